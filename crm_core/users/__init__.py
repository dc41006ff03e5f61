"""Users: who signs in, in which language and time zone."""
