"""hostd."""
