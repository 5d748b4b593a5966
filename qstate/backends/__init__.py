"""Built-in backends, one module each; importing this package imports none of them."""
