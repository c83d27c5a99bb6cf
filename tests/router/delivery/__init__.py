"""Delivery: the outbox, events between nodes, shared limits."""
