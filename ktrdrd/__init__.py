"""ktrdrd."""
