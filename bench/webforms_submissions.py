"""Web-to-lead submissions per second through the whole endpoint (WSGI, no network): rate
limit counter, token, idempotency look-up, duplicate check, lead and submission in one
transaction. Beside it, the raw-database figure for the same rows: the lead and the
submission inserted with executemany, nothing checked.

    python bench/webforms_submissions.py [--count 2000] [--database-url sqlite:///...]
"""

import argparse
import datetime as dt
import json
import secrets
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crm_core import create_app  # noqa: E402
from crm_core.testing import base_config, make_user, migrate  # noqa: E402


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--database-url")
    parser.add_argument("--existing", type=int, default=0,
                        help="leads already in the base (inserted raw first): the duplicate check scans phones")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="crm-bench-webforms-"))
    url = args.database_url or f"sqlite:///{folder}/bench.sqlite3"
    app = create_app({**base_config(url, folder), "CRM_PLUGINS": ""})
    with app.app_context():
        migrate(app)
        from crm_core.db import database
        from crm_core.leads.models import Lead
        from crm_core.webforms import services
        from crm_core.webforms.models import WebFormSubmission

        admin = make_user("bench-admin@example.com", is_admin=True, password=None)
        form = services.create_form({"name": "Bench", "rate_limit": 10000, "fields": [
            {"name": "first_name", "label": "First name"},
            {"name": "last_name", "label": "Last name", "required": True},
            {"name": "email", "label": "Email", "required": True},
            {"name": "phone", "label": "Phone"}, {"name": "company", "label": "Company"}]},
            actor_id=admin.id)
        token = services.snippet_token(form)
        if args.existing:
            now = dt.datetime.now(dt.timezone.utc)
            stamp = Lead.created_at.db_value(now)
            rows = [(1, stamp, stamp, admin.id, f"Old {n}", f"old{n}@example.com", f"+84 (28) {n:08d}", "web", "new")
                    for n in range(args.existing)]
            placeholder = "%s" if "postgres" in url else "?"
            with database.atomic():
                database.connection().cursor().executemany(
                    "INSERT INTO lead (version, created_at, updated_at, owner_id, last_name, email, phone, source,"
                    " status) VALUES (" + ", ".join([placeholder] * 9) + ")", rows)
            probe = {"email": "nobody@example.com", "phone": "+48 22 7654321"}
            start = time.perf_counter()
            for _ in range(5):
                assert services.find_duplicate(probe) is None
            print(f"duplicate check over {args.existing:,} leads: {(time.perf_counter() - start) / 5 * 1000:.0f} ms "
                  "(email by index, phone digits by scan)")
        client = app.test_client()
        bodies = [{services.TOKEN_FIELD: token, "first_name": "Anna", "last_name": f"Nowak {n}",
                   "email": f"anna{n}@example.pl", "phone": f"+48 22 {n:07d}", "company": f"Firma {n}"}
                  for n in range(args.count)]
        start = time.perf_counter()
        for n, body in enumerate(bodies):
            client.environ_base["REMOTE_ADDR"] = f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}"
            response = client.post(f"/api/v1/web-to-lead/{form.key}", json=body)
            assert response.status_code == 201, response.get_data(as_text=True)
        endpoint = time.perf_counter() - start
        assert Lead.select().count() == args.count + args.existing

        now = dt.datetime.now(dt.timezone.utc)
        raw_leads = [(1, now, now, admin.id, b["first_name"], b["last_name"] + " raw", b["email"], b["phone"],
                      b["company"], "web", "new") for b in bodies]
        conn = database.connection()
        placeholder = "%s" if "postgres" in url else "?"
        start = time.perf_counter()
        with database.atomic():
            cursor = conn.cursor()
            cursor.executemany(
                "INSERT INTO lead (version, created_at, updated_at, owner_id, first_name, last_name, email, "
                "phone, company, source, status) VALUES (" + ", ".join([placeholder] * 11) + ")",
                [tuple(Lead.created_at.db_value(v) if isinstance(v, dt.datetime) else v for v in row)
                 for row in raw_leads])
            cursor.executemany(
                "INSERT INTO web_form_submission (uid, form_id, idempotency_key, address, created_at, payload, "
                "result) VALUES (" + ", ".join([placeholder] * 7) + ")",
                [(secrets.token_hex(16), form.id, f"raw:{n}", "10.0.0.1",
                  WebFormSubmission.created_at.db_value(now), json.dumps(b), "lead")
                 for n, b in enumerate(bodies)])
        raw = time.perf_counter() - start
    print(f"web-to-lead endpoint: {args.count} submissions in {endpoint:.2f} s = "
          f"{args.count / endpoint:,.0f}/s ({1000 * endpoint / args.count:.2f} ms each)")
    print(f"raw database (executemany of the same leads and submissions): {args.count / raw:,.0f}/s")


if __name__ == "__main__":
    main()
