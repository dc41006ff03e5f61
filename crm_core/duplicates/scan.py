"""The scan over the whole base: pairs of records alike under the object's rules, stored
for review; and the groups a reader may see (pairs of records they may read, joined).

The scan runs as the system (it only stores pairs); what a person is shown is filtered
by the access engine when they look."""

from __future__ import annotations

import logging
import time
from collections import defaultdict

from rapidfuzz import fuzz, process

from crm_core.db import database, utcnow
from crm_core.duplicates.keys import rebuild_keys
from crm_core.duplicates.rules import OBJECTS, settings_of

log = logging.getLogger("crm.duplicates")

MAX_EXACT_GROUP = 100   # more records on one key is a shared switchboard, not a duplicate
MAX_BLOCK = 3000        # a block larger than this is a very common name: compared in slices
BULK = 5000


def exact_pairs(object_name, kind):
    """Pairs of records sharing a ``kind`` key; a group of n gives n-1 pairs to its first."""
    from peewee import fn

    from crm_core.duplicates.models import MatchKey

    values = (MatchKey.select(MatchKey.value)
              .where((MatchKey.object == object_name) & (MatchKey.kind == kind))
              .group_by(MatchKey.value)
              .having((fn.COUNT(MatchKey.id) > 1) & (fn.COUNT(MatchKey.id) <= MAX_EXACT_GROUP)))
    rows = (MatchKey.select(MatchKey.value, MatchKey.record_id)
            .where((MatchKey.object == object_name) & (MatchKey.kind == kind)
                   & MatchKey.value.in_(values))
            .order_by(MatchKey.value, MatchKey.record_id).tuples())
    pairs, first, current = set(), None, None
    for value, record_id in rows.iterator():
        if value != current:
            current, first = value, record_id
        elif record_id != first:
            pairs.add((first, record_id))
    return pairs


def fuzzy_pairs(object_name, threshold):
    """``{(low, high): score}`` of records whose names score at least ``threshold``,
    compared within the name blocks they share."""
    from crm_core.duplicates.models import MatchKey

    def rows(kind, *fields):
        sql, params = (MatchKey.select(*fields)
                       .where((MatchKey.object == object_name) & (MatchKey.kind == kind)).sql())
        return database.execute_sql(sql, params)  # a plain cursor: hundreds of thousands of rows

    names = dict(rows("name", MatchKey.record_id, MatchKey.value))
    blocks = defaultdict(list)
    for value, record_id in rows("block", MatchKey.value, MatchKey.record_id):
        blocks[value].append(record_id)
    found = {}
    for members in blocks.values():
        if len(members) < 2:
            continue
        members.sort()
        for start in range(0, len(members), MAX_BLOCK):
            chunk = members[start:start + MAX_BLOCK]
            texts = [names.get(record_id, "") for record_id in chunk]
            for i in range(len(chunk) - 1):
                for _, score, j in process.extract(texts[i], texts[i + 1:], scorer=fuzz.token_sort_ratio,
                                                   processor=None, score_cutoff=threshold, limit=None):
                    pair = (chunk[i], chunk[i + 1 + j])
                    found[pair] = max(found.get(pair, 0), int(round(score)))
    return found


def scan(object_name=None):
    """Rebuild the keys and find the duplicate pairs of one object (or of every object
    whose rules are not all off); keep dismissed pairs dismissed. Returns
    ``{object: {"pairs": n, "seconds": s}}``."""
    from crm_core.audit.services import log_security

    results = {}
    for name in ([object_name] if object_name else list(OBJECTS)):
        started = time.perf_counter()
        settings = settings_of(name)
        rebuild_keys(name)
        keys_done = time.perf_counter()
        found = {}
        for rule in settings.rules:
            if rule["method"] == "exact":
                for pair in exact_pairs(name, rule["key"]):
                    found.setdefault(pair, (rule["key"], 100))
            else:
                for pair, score in fuzzy_pairs(name, rule.get("threshold", 90)).items():
                    found.setdefault(pair, ("name", score))
        matched = time.perf_counter()
        store_pairs(name, found)
        done = time.perf_counter()
        results[name] = {"pairs": len(found), "seconds": round(done - started, 2),
                         "keys_seconds": round(keys_done - started, 2),
                         "match_seconds": round(matched - keys_done, 2),
                         "store_seconds": round(done - matched, 2)}
        log.info("duplicate scan of %s: %s pairs in %.1fs", name, len(found), results[name]["seconds"])
    log_security("duplicates_scanned", subject=object_name or "all", results=results)
    return results


def store_pairs(object_name, found):
    """Replace the open pairs of an object with ``found``; dismissed ones stay dismissed."""
    from crm_core.duplicates.models import DuplicatePair

    with database.atomic():
        dismissed = set(DuplicatePair.select(DuplicatePair.low_id, DuplicatePair.high_id)
                        .where((DuplicatePair.object == object_name) & DuplicatePair.dismissed_at.is_null(False))
                        .tuples())
        DuplicatePair.delete().where((DuplicatePair.object == object_name)
                                     & DuplicatePair.dismissed_at.is_null()).execute()
        now = utcnow()
        rows = [(object_name, low, high, reason, score, now)
                for (low, high), (reason, score) in sorted(found.items()) if (low, high) not in dismissed]
        if rows:
            p = database.param
            found_at = DuplicatePair.found_at.db_value(now)
            database.cursor().executemany(
                f'INSERT INTO "duplicate_pair" ("object", "low_id", "high_id", "reason", "score", "found_at") '
                f"VALUES ({p}, {p}, {p}, {p}, {p}, {p})", [row[:5] + (found_at,) for row in rows])


def components(pairs):
    """Union-find over ``(a, b)`` pairs: ``(root, parent)``, where ``root(x)`` names the
    group of ``x`` (its smallest id) and ``parent`` holds every id seen."""
    parent = {}

    def root(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    return root, parent


def groups(object_name, actor_id, limit_pairs=20000):
    """The open duplicate groups of ``object_name`` among the records ``actor_id`` may
    read: lists of ``(record, [pairs])``, largest first. A record the reader cannot see is
    never in a group (nor the pairs through it)."""
    from crm_core.duplicates.models import DuplicatePair
    from crm_core.duplicates.rules import spec_of
    from crm_core.permissions import engine

    spec_of(object_name)
    model = engine().objects[object_name].model
    readable = engine().query(actor_id, object_name, model.id)
    pairs = list(DuplicatePair.select()
                 .where((DuplicatePair.object == object_name) & DuplicatePair.dismissed_at.is_null()
                        & DuplicatePair.low_id.in_(readable) & DuplicatePair.high_id.in_(readable))
                 .order_by(DuplicatePair.low_id, DuplicatePair.high_id).limit(limit_pairs))
    root, parent = components((pair.low_id, pair.high_id) for pair in pairs)
    members = defaultdict(list)
    for record_id in parent:
        members[root(record_id)].append(record_id)
    by_group = defaultdict(list)
    for pair in pairs:
        by_group[root(pair.low_id)].append(pair)
    records = {record.id: record for record in model.alive().where(model.id.in_(list(parent)))} if parent else {}
    out = []
    for key, ids in members.items():
        shown = [records[i] for i in sorted(ids) if i in records]
        if len(shown) > 1:
            out.append({"records": shown, "pairs": by_group[key]})
    out.sort(key=lambda group: (-len(group["records"]), group["records"][0].id))
    return out


def dismiss(pair, actor_id):
    """"Not a duplicate": the pair is never proposed again (the reader must see both)."""
    from crm_core.audit.services import log_security
    from crm_core.duplicates.models import DuplicatePair

    DuplicatePair.update(dismissed_at=utcnow(), dismissed_by_id=actor_id).where(
        DuplicatePair.id == pair.id).execute()
    log_security("duplicate_dismissed", actor_id=actor_id, subject=f"{pair.object} {pair.low_id}",
                 other=pair.high_id)
