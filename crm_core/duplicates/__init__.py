"""Duplicates: match keys, rules, the check on entry, the scan job, merge and mass transfer."""
