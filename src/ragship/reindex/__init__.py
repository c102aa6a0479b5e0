"""Scheduled reindexing: the reindex notebook's parameters and its papermill run recorded in MLflow (job), and the
triggers, the no-overlap lock and SIGTERM handling of `ragship schedule reindex` (schedule)."""
