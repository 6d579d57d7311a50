"""Test-only helpers shipped with the tests, never with the product."""
