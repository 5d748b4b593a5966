"""Integrations with task frameworks; each imports its framework only when used."""
