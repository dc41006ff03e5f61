"""The funnel's aggregates of the opportunity table, the triggers that keep them exact on
every write path (services, executemany and COPY imports, merges, transfers, raw SQL),
and the company's currency rates.

The triggers subtract a row's old contribution and add its new one: an insert adds, a
delete subtracts, an update of any counted column (owner, pipeline, stage, status,
currency, amount, probability, closed date, deleted_at) does both. A soft-deleted row
counts nowhere; restoring it counts it again.
"""

import datetime

from peewee import CharField, DateField, DecimalField, IntegerField

from crm_core.db import CurrencyField, UTCDateTimeField, vendor
from crm_core.migrator import frozen_table

COUNTED = ("owner_id", "pipeline_id", "stage_id", "status", "currency", "amount", "probability",
           "closed_date", "deleted_at")
TOTAL_KEY = ("owner_id", "pipeline_id", "stage_id", "currency")
CLOSED_KEY = ("owner_id", "pipeline_id", "status", "currency", "month")


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _month(row, db_vendor):
    if db_vendor == "postgresql":
        return (f"(EXTRACT(YEAR FROM {row}.closed_date)::integer * 100 "
                f"+ EXTRACT(MONTH FROM {row}.closed_date)::integer)")
    return f"CAST(substr({row}.closed_date, 1, 4) || substr({row}.closed_date, 6, 2) AS INTEGER)"


def _statements(row, sign, db_vendor):
    """SQL that adds (sign +1) or subtracts (-1) the contribution of ``row`` (NEW or OLD)."""
    weighted = (f"COALESCE({row}.amount, 0)::numeric * {row}.probability" if db_vendor == "postgresql"
                else f"COALESCE({row}.amount, 0) * {row}.probability")
    month = _month(row, db_vendor)
    closed = f"{row}.status IN ('won', 'lost') AND {row}.closed_date IS NOT NULL"
    if sign > 0:
        total = (f"INSERT INTO funnel_total (owner_id, pipeline_id, stage_id, currency, count, amount, weighted) "
                 f"SELECT {row}.owner_id, {row}.pipeline_id, {row}.stage_id, {row}.currency, 1, "
                 f"COALESCE({row}.amount, 0), {weighted} WHERE {row}.deleted_at IS NULL "
                 f"ON CONFLICT ({', '.join(TOTAL_KEY)}) DO UPDATE SET count = funnel_total.count + 1, "
                 f"amount = funnel_total.amount + excluded.amount, "
                 f"weighted = funnel_total.weighted + excluded.weighted")
        closed_sql = (f"INSERT INTO funnel_closed_month (owner_id, pipeline_id, status, currency, month, count, amount) "
                      f"SELECT {row}.owner_id, {row}.pipeline_id, {row}.status, {row}.currency, {month}, 1, "
                      f"COALESCE({row}.amount, 0) WHERE {row}.deleted_at IS NULL AND {closed} "
                      f"ON CONFLICT ({', '.join(CLOSED_KEY)}) DO UPDATE SET "
                      f"count = funnel_closed_month.count + 1, "
                      f"amount = funnel_closed_month.amount + excluded.amount")
        return [total, closed_sql]
    total = (f"UPDATE funnel_total SET count = count - 1, amount = amount - COALESCE({row}.amount, 0), "
             f"weighted = weighted - {weighted} WHERE {row}.deleted_at IS NULL AND "
             + " AND ".join(f"{c} = {row}.{c}" for c in TOTAL_KEY))
    closed_sql = (f"UPDATE funnel_closed_month SET count = count - 1, amount = amount - COALESCE({row}.amount, 0) "
                  f"WHERE {row}.deleted_at IS NULL AND {closed} AND month = {month} AND "
                  + " AND ".join(f"{c} = {row}.{c}" for c in CLOSED_KEY if c != "month"))
    return [total, closed_sql]


def _changed(db_vendor):
    differs = "IS DISTINCT FROM" if db_vendor == "postgresql" else "IS NOT"
    return " OR ".join(f"OLD.{c} {differs} NEW.{c}" for c in COUNTED)


def _sqlite_triggers():
    add, remove = _statements("NEW", 1, "sqlite"), _statements("OLD", -1, "sqlite")
    body = lambda statements: "BEGIN " + "; ".join(statements) + "; END"  # noqa: E731
    return [
        f"CREATE TRIGGER funnel_opportunity_insert AFTER INSERT ON opportunity {body(add)}",
        f"CREATE TRIGGER funnel_opportunity_delete AFTER DELETE ON opportunity {body(remove)}",
        f"CREATE TRIGGER funnel_opportunity_update AFTER UPDATE OF {', '.join(COUNTED)} ON opportunity "
        f"WHEN {_changed('sqlite')} {body(remove + add)}",
    ]


def _postgresql_triggers():
    add, remove = _statements("NEW", 1, "postgresql"), _statements("OLD", -1, "postgresql")
    function = f"""
CREATE OR REPLACE FUNCTION funnel_opportunity_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        {'; '.join(remove)};
    END IF;
    IF TG_OP <> 'DELETE' THEN
        {'; '.join(add)};
    END IF;
    RETURN NULL;
END
$$"""
    return [
        function,
        "CREATE TRIGGER funnel_opportunity_insert_delete AFTER INSERT OR DELETE ON opportunity "
        "FOR EACH ROW EXECUTE FUNCTION funnel_opportunity_change()",
        f"CREATE TRIGGER funnel_opportunity_update AFTER UPDATE OF {', '.join(COUNTED)} ON opportunity "
        f"FOR EACH ROW WHEN ({_changed('postgresql')}) EXECUTE FUNCTION funnel_opportunity_change()",
    ]


def _backfill(db_vendor):
    weighted = "CAST(amount AS NUMERIC) * probability"
    month = _month("opportunity", db_vendor)
    return [
        "INSERT INTO funnel_total (owner_id, pipeline_id, stage_id, currency, count, amount, weighted) "
        f"SELECT owner_id, pipeline_id, stage_id, currency, COUNT(*), COALESCE(SUM(amount), 0), "
        f"COALESCE(SUM({weighted}), 0) FROM opportunity WHERE deleted_at IS NULL "
        "GROUP BY owner_id, pipeline_id, stage_id, currency",
        "INSERT INTO funnel_closed_month (owner_id, pipeline_id, status, currency, month, count, amount) "
        f"SELECT owner_id, pipeline_id, status, currency, {month}, COUNT(*), COALESCE(SUM(amount), 0) "
        "FROM opportunity WHERE deleted_at IS NULL AND status IN ('won', 'lost') AND closed_date IS NOT NULL "
        f"GROUP BY owner_id, pipeline_id, status, currency, {month}",
    ]


def up(migrator, db):
    money_sum = {"max_digits": 38, "decimal_places": 0, "default": 0}
    total = frozen_table(db, "funnel_total", {
        "owner_id": IntegerField(),
        "pipeline_id": IntegerField(),
        "stage_id": IntegerField(),
        "currency": CharField(max_length=3),
        "count": IntegerField(default=0),
        "amount": DecimalField(**money_sum),
        "weighted": DecimalField(**money_sum),
    }, indexes=(((TOTAL_KEY), True), (("pipeline_id", "owner_id"), False)))
    closed = frozen_table(db, "funnel_closed_month", {
        "owner_id": IntegerField(),
        "pipeline_id": IntegerField(),
        "status": CharField(max_length=8),
        "currency": CharField(max_length=3),
        "month": IntegerField(),
        "count": IntegerField(default=0),
        "amount": DecimalField(**money_sum),
    }, indexes=(((CLOSED_KEY), True), (("pipeline_id", "month"), False)))
    rate = frozen_table(db, "currency_rate", {
        "currency": CurrencyField(),
        "rate": CharField(max_length=40),
        "valid_from": DateField(),
        "created_at": UTCDateTimeField(default=_now),
        "created_by_id": IntegerField(null=True),
    }, indexes=((("currency", "valid_from"), True),))
    db.create_tables([total, closed, rate])
    db_vendor = vendor(db)
    for sql in _backfill(db_vendor):
        db.execute_sql(sql)
    for sql in (_postgresql_triggers() if db_vendor == "postgresql" else _sqlite_triggers()):
        db.execute_sql(sql)
