"""Planning: index size estimates and the capacity planner (replicas for a load and a latency goal)."""
