"""The agents' inbox and REST API."""
