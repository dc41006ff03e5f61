"""What the importer takes from the other parts: custom fields (``custom.<key>`` columns),
duplicate matching (keys stored for new rows; "block" refuses rows matching a readable
record) and the assignment rules (an owner for rows that name none). ``wire(importer)``
adds their steps and callbacks to an ``Importer`` (see pipeline.py for the steps)."""

from __future__ import annotations

from crm_core.imports.pipeline import CUSTOM


def wire(importer):
    if importer.custom_specs:
        _custom(importer)
    _duplicates(importer)
    if not importer.dry_run:
        _assignment(importer)


# -- custom fields ----------------------------------------------------------------------------------

def _custom(importer):
    from crm_core.customfields import compile_validator, dumps

    name = importer.spec.name
    validators = {}   # built once per run: new records (every required field) and changes
    columns = importer.custom_columns

    def custom(row):
        new = row.record is None
        if new not in validators:
            validators[new] = compile_validator(name, partial=not new)
        raw, width = {}, len(row.raw)
        for index, _title, key in columns:
            text = row.raw[index].strip() if index < width else ""
            raw[key] = text or None
        values, errors = validators[new](raw)
        if errors:
            field, message = next(iter(errors.items()))
            key = field[len(CUSTOM):]
            row.fail(importer.title_of.get(field, field), raw.get(key) or "", "rejected", message=str(message))
            return
        for key, value in values.items():
            row.values[CUSTOM + key] = value   # part of the row's hash: a second run skips it
        if new:
            row.values["custom"] = dumps({k: v for k, v in values.items() if v is not None})
        elif raw:
            row.custom, row.values["custom"] = raw, values

    importer.add_step(custom, after="checks")


# -- duplicates ----------------------------------------------------------------------------------------

def _duplicates(importer):
    from crm_core.duplicates.rules import OBJECTS, settings_of

    name = importer.spec.name
    if name not in OBJECTS:
        return
    from crm_core.duplicates.check import find_duplicates_bulk, unchecked
    from flask import current_app

    from crm_core.duplicates.keys import NAME_KINDS, keys_for, store_keys_bulk

    spec = OBJECTS[name]
    settings = settings_of(name)
    exact = {rule["key"] for rule in settings.rules if rule["method"] == "exact"}
    # The keys written with the rows: the exact ones (and the name when a rule matches it
    # exactly); the other name keys follow in a job after the commit.
    now = frozenset(set(spec.fields) | (exact & {"name"}))
    later = NAME_KINDS - now
    countries = {}
    seen = {}  # exact key -> the line of the file that had it first

    def country_of(values):
        # A contact's phones belong to its account's country: read once per account.
        if name == "contact":
            account_id = values.get("account_id")
            if account_id not in countries:
                countries[account_id] = spec.country_of(values) if account_id is not None else None
            return countries[account_id] or ""
        return spec.country_of(values) or ""

    def duplicates(rows):
        fresh = [row for row in rows if row.error is None and not row.skip and row.record is None]
        by_country = {}
        for row in fresh:
            by_country.setdefault(country_of(row.values), []).append(row)
        for country, group in by_country.items():
            for row in group:  # once per row: the check, the file's own twins and the store use them
                row.match_keys = keys_for(name, row.values, country=country, kinds=now)
            found = find_duplicates_bulk(name, [row.values for row in group], actor_id=importer.actor,
                                         country=country, keys=[row.match_keys for row in group])
            for row, ids in zip(group, found):
                if ids:
                    row.fail("", "", "duplicate", records=", ".join(str(i) for i in ids))
                    continue
                for key in row.match_keys:
                    if key[0] not in exact:
                        continue
                    first = seen.setdefault(key, row.line)
                    if first != row.line:
                        row.fail("", key[1], "duplicate_in_file_key", line=first)
                        break

    inserted = []  # (first id, last id) of each batch: their name keys follow in a job

    def store(rows):
        pending = []
        for row in rows:
            found = row.match_keys
            if found is None:
                found = keys_for(name, row.values, country=country_of(row.values), kinds=now)
            pending.append((row.id, row.values, None, found))
        store_keys_bulk(name, pending, replace=False)
        ids = [row.id for row in rows]
        if ids:
            inserted.append((min(ids), max(ids)))

    def store_name_keys_later():
        if inserted and later:
            current_app.extensions["crm_jobs"].enqueue(
                "core.store_name_keys", name, min(a for a, _ in inserted), max(b for _, b in inserted),
                sorted(later))

    if settings.mode == "block":
        names = [step for step, _ in importer.steps]
        importer.steps.insert(names.index("row_hash") + 1, ("duplicates", None))
        importer.batch_steps["duplicates"] = duplicates
    elif settings.mode == "warn":
        # The file was meant to be imported: "warn" imports, like a confirmed entry.
        importer.update_context = unchecked
    importer.after_insert.append(store)
    importer.after_run.append(store_name_keys_later)


# -- assignment rules ------------------------------------------------------------------------------------

def _assignment(importer):
    from crm_core.assignment.objects import assignable_names

    name = importer.spec.name
    if "owner_id" not in importer.fields or name not in assignable_names():
        return
    from crm_core.assignment.engine import compile_rules
    from crm_core.assignment.services import records_created

    proposer = compile_rules(name, block=1000, for_creation=True)
    if not proposer.rules:
        return
    proposed = {}

    def assign(row):
        if row.record is None and row.owner_defaulted:
            row.proposed = proposer.propose(row.values)
            if row.proposed is not None and proposer.mode == "apply":
                row.values["owner_id"] = row.proposed

    def remember(rows):
        proposed.update((row.id, row.proposed) for row in rows if row.owner_defaulted)

    def notify():
        if proposed:
            records_created(name, list(proposed), actor_id=importer.actor, proposed=proposed)

    names = [step for step, _ in importer.steps]
    importer.steps.insert(len(names) if "duplicates" not in names else names.index("duplicates") + 1,
                          ("assign", assign))
    importer.after_insert.append(remember)
    importer.at_end.append(proposer.finish)
    importer.after_run.append(notify)
