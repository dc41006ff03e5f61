"""The recycle bin: deleted records with their children, restorable until purged."""
