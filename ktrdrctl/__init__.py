"""ktrdrctl."""
