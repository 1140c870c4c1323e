"""Scripts that measure the cache and print figures (``python -m benchmarks.<name>``)."""
