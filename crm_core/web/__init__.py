"""Server-rendered pages for people: the core blueprint, slots, security headers."""
