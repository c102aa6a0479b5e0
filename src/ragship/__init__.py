"""ragship: take a RAG system from notebook prototype to production."""

from ragship.environment import disable_phone_home

# Before any Haystack import: its usage telemetry would otherwise try to reach the internet.
disable_phone_home()

__version__ = "0.1.0"
