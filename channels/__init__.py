"""Channels: how customer messages get in and replies get out. Never imports the router."""

__all__: list[str] = []
