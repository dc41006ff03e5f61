"""Leads and the campaigns that bring them: capture, qualification, conversion."""
