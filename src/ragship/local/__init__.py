"""Servers ragship starts on this machine for development and tests: Elasticsearch nodes, Redis, RabbitMQ."""
