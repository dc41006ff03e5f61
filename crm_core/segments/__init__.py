"""Segments: saved condition trees over any field of a record kind (custom fields
included), run through the access engine; usable as mailing lists."""
