"""Web-to-lead: forms an administrator embeds on the company's site, and what visitors send."""
