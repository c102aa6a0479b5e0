"""What production does: traces across processes (docs/observability.md)."""
