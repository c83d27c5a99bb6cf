"""Delivery: what leaves (outbox, notify), what is kept (files, channel state,
the visitor stream, shared limits) and what the other nodes hear (events, pg_events)."""
