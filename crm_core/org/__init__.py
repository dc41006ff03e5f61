"""The organisation: departments, managers, teams, roles, sharing."""
