"""Evaluation: BEIR retrieval metrics, answer quality on QA sets, experiment grids."""
