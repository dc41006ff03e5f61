"""The sales funnel: per stage counts and amounts as the reader may see them, answered from
aggregates the database keeps exact, and the currency rates the company maintains."""
