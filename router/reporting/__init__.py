"""Reporting: the reports, their tables, and what the bot cannot answer (kb_gaps)."""
