"""Who changed what: field history of business records, and the security log."""
