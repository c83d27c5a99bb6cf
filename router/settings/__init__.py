"""Settings an admin changes while the service runs: business hours and
promises (sla), routing (routing), kept in the database (editable)."""
