"""Reporting: the reports and what the bot cannot answer."""
