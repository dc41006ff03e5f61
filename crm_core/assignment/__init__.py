"""Assignment rules: ordered rules per object that give new records an owner (a user or a
round-robin group), applied at once or proposed to a manager."""
