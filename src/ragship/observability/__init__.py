"""What production does: traces across processes, quality metrics of live answers, the shadow challenger
(docs/observability.md)."""
