"""ragship."""
