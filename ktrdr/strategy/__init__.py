"""ktrdr/strategy."""
