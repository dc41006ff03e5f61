"""An assignment rule may name a plugin's assignment target (crm_register_assignment_targets,
e.g. the territory plugin's ``territory``) instead of an owner or a round-robin group."""

from peewee import CharField


def up(migrator, db):
    migrator.migrate(migrator.add_column("assignment_rule", "target", CharField(max_length=64, null=True)))
