"""Accounts (business partners: prospects, customers, resellers, vendors) and their contacts."""
