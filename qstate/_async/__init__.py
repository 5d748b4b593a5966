"""Implementation of one flavour (``.ci/unasync.py`` says how the twins are made)."""
