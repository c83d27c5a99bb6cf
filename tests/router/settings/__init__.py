"""Settings admins change while the service runs."""
