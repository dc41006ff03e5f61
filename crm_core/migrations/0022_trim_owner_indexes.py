"""Drop the single-column owner indexes of leads and accounts: their (owner_id, status) and
(owner_id, name) indexes start with the owner and serve the same lookups, while every extra
index slows each insert (bulk imports write up to a million rows)."""


def up(migrator, db):
    migrator.migrate(migrator.drop_index("lead", "lead_owner_id"),
                     migrator.drop_index("account", "account_owner_id"))
