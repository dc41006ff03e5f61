"""Realignment: recompute where a model places every account and lead, preview, apply."""


def tasks():
    return []
