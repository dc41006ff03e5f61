"""What the importer takes from the other parts: custom fields (``custom.<key>`` columns),
duplicate matching (keys stored for new rows; "block" refuses rows matching a readable
record) and the assignment rules (an owner for rows that name none). ``wire(importer)``
adds their steps and callbacks to an ``Importer`` (see pipeline.py for the steps)."""

from __future__ import annotations

from crm_core.imports.pipeline import CUSTOM, RowValues


def wire(importer):
    if importer.custom_specs:
        _custom(importer)
    _duplicates(importer)
    if not importer.dry_run:
        _assignment(importer)


# -- custom fields ----------------------------------------------------------------------------------

def _custom(importer):
    from crm_core.customfields import compile_columns
    from crm_core.customfields.models import encode_value

    name = importer.spec.name
    columns = importer.custom_columns
    keys = [key for _, _, key in columns]
    checkers = {}   # built once per run: new records (every required field) and changes

    def custom(batch):
        records = batch.records
        new = batch.new()
        changed = [i for i in batch.live() if i in records] if records else []
        texts = {key: batch.texts(index) for index, _title, key in columns}
        for indices, is_new in ((new, True), (changed, False)):
            if not indices:
                continue
            if is_new not in checkers:
                checkers[is_new] = compile_columns(name, keys, partial=not is_new)
            whole = len(indices) == batch.size
            raw = {key: [text or None for text in batch.take(column, indices)] for key, column in texts.items()}
            values, errors = checkers[is_new](raw, len(indices))
            for j, (field, message) in errors.items():
                given = raw.get(field[len(CUSTOM):])
                batch.fail(indices[j], importer.title_of.get(field, field), (given[j] if given else None) or "",
                           "rejected", message=str(message))
            for key, column in values.items():
                # Part of the row's hash: a second run skips it.
                target = batch.column(CUSTOM + key)
                if whole:
                    batch.values[CUSTOM + key] = column
                else:
                    for i, value in zip(indices, column):
                        target[i] = value
            if is_new:
                _encode(batch, indices, values, whole, encode_value)
            elif raw:  # an update passes the file's custom text on to the service
                stored = batch.column("custom")
                for j, i in enumerate(indices):
                    batch.custom[i] = {key: column[j] for key, column in raw.items()}
                    stored[i] = {key: column[j] for key, column in values.items()}

    importer.add_batch_step(custom, after="checks")


def _encode(batch, indices, values, whole, encode):
    """The ``custom`` column of new rows: their values as the JSON ``dumps`` writes (keys
    sorted, no None), one value encoded at a time."""
    parts = []
    for key, column in sorted(values.items()):
        prefix = encode(key) + ":"
        parts.append([None if value is None else prefix + encode(value) for value in column])
    if len(parts) == 1:
        texts = [None if part is None else "{" + part + "}" for part in parts[0]]
    else:
        texts = [("{" + ",".join(found) + "}") if (found := [p for p in row if p is not None]) else None
                 for row in zip(*parts)] if parts else [None] * len(indices)
    if whole:
        batch.values["custom"] = texts
    else:
        stored = batch.column("custom")
        for i, text in zip(indices, texts):
            stored[i] = text


# -- duplicates ----------------------------------------------------------------------------------------

def _duplicates(importer):
    from crm_core.duplicates.rules import OBJECTS, settings_of

    name = importer.spec.name
    if name not in OBJECTS:
        return
    from crm_core.duplicates.check import find_duplicates_bulk, unchecked
    from flask import current_app

    from crm_core.duplicates.keys import NAME_KINDS, keys_for_columns, store_new_keys

    spec = OBJECTS[name]
    settings = settings_of(name)
    exact = {rule["key"] for rule in settings.rules if rule["method"] == "exact"}
    # The keys written with the rows: the exact ones (and the name when a rule matches it
    # exactly); the other name keys follow in a job after the commit.
    now = frozenset(set(spec.fields) | (exact & {"name"}))
    later = NAME_KINDS - now
    countries = {}
    seen = {}  # exact key -> the line of the file that had it first

    def countries_of(batch, indices):
        """The country of each row's national phone numbers ("" when none)."""
        if name == "contact":
            # A contact's phones belong to its account's country: read once per account.
            accounts = batch.values.get("account_id") or [None] * batch.size
            for account_id in {accounts[i] for i in indices} - countries.keys():
                countries[account_id] = spec.country_of({"account_id": account_id}) if account_id is not None else None
            return [countries[accounts[i]] or "" for i in indices]
        view = RowValues(batch)
        found = []
        for i in indices:
            view.index = i
            found.append(spec.country_of(view) or "")
        return found

    def keys_of(batch, indices):
        """The exact match keys of rows ``indices`` (once per row: the check, the file's own
        twins and the store use them)."""
        names = {n for kind in now & spec.fields.keys() for n in spec.fields[kind]}
        if now & NAME_KINDS:
            names |= set(batch.values)  # the name's keys read the name fields and the scope
        columns = {n: batch.take(batch.values[n], indices) for n in names if n in batch.values}
        return keys_for_columns(name, columns, countries_of(batch, indices), kinds=now)

    def duplicates(batch):
        fresh = batch.new()
        if not fresh:
            return
        fresh = list(fresh)
        keys = keys_of(batch, fresh)
        batch.match_keys.update(zip(fresh, keys))
        found = find_duplicates_bulk(name, [], actor_id=importer.actor, keys=keys)
        lines = batch.lines
        for i, row_keys, ids in zip(fresh, keys, found):
            if ids:
                batch.fail(i, "", "", "duplicate", records=", ".join(str(record) for record in ids))
                continue
            line = lines[i]
            for key in row_keys:
                if key[0] not in exact:
                    continue
                first = seen.setdefault(key, line)
                if first != line:
                    batch.fail(i, "", key[1], "duplicate_in_file_key", line=first)
                    break

    inserted = []  # (first id, last id) of each batch: their name keys follow in a job

    def store(rows):
        batch, known = rows.batch, rows.batch.match_keys
        missing = [i for i in rows.indices if i not in known]
        if missing:
            known.update(zip(missing, keys_of(batch, missing)))
        store_new_keys(name, rows.ids, [known[i] for i in rows.indices])
        if rows.ids:
            inserted.append((min(rows.ids), max(rows.ids)))

    def store_name_keys_later():
        if inserted and later:
            current_app.extensions["crm_jobs"].enqueue(
                "core.store_name_keys", name, min(a for a, _ in inserted), max(b for _, b in inserted),
                sorted(later))

    if settings.mode == "block":
        importer.add_batch_step(duplicates, after="row_hash")
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

    def assign(batch):
        # Rows in file order: the round robin gives its turns in that order.
        live = set(batch.live())
        owners, view, apply = batch.column("owner_id"), RowValues(batch), proposer.mode == "apply"
        for i in batch.defaulted:
            if i in live and i not in batch.records:
                view.index = i
                batch.proposed[i] = found = proposer.propose(view)
                if found is not None and apply:
                    owners[i] = found

    def remember(rows):
        defaulted, given = rows.batch.defaulted, rows.batch.proposed
        proposed.update((record_id, given.get(i)) for i, record_id in zip(rows.indices, rows.ids) if i in defaulted)

    def notify():
        if proposed:
            records_created(name, list(proposed), actor_id=importer.actor, proposed=proposed)

    names = [step for step, _ in importer.steps]
    importer.add_batch_step(assign, after="duplicates" if "duplicates" in names else names[-1])
    importer.after_insert.append(remember)
    importer.at_end.append(proposer.finish)
    importer.after_run.append(notify)
