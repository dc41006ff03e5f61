"""The notification centre: in-app notifications per user and their emails."""
