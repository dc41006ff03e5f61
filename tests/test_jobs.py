"""Background jobs: a job queued by a web request runs in a separate `crm worker` process."""

import signal
import subprocess
import sys
import time
import uuid

import pytest
import redis

from crm_core.app import create_app
from crm_core.testing import api_client, base_config, start_crm, stop_process, subprocess_env

pytestmark = pytest.mark.crm_plugins("notes")

REDIS_URL = "redis://127.0.0.1:6379/15"


def wait_for(predicate, timeout=60.0, interval=0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


@pytest.fixture(params=["sqlite-storage", "redis-storage"])
def queue_settings(request, tmp_path):
    if request.param == "sqlite-storage":
        yield {}
        return
    client = redis.Redis.from_url(REDIS_URL)
    client.ping()  # Redis runs on this machine and in CI: fail, don't skip, when it is gone
    client.flushdb()
    yield {"CRM_REDIS_URL": REDIS_URL}
    client.flushdb()


def test_a_job_queued_by_a_request_runs_in_the_worker_process(app_factory, queue_settings, tmp_path):
    app = app_factory(CRM_JOBS_IMMEDIATE=False, **queue_settings)
    from crm_notes.models import Note

    title = f"from-the-queue-{uuid.uuid4().hex[:8]}"
    response = api_client(app).post("/plugins/notes/enqueue", data={"title": title})
    assert response.status_code == 202
    with app.app_context():
        assert not Note.select().where(Note.title == title).exists()  # queued, not run inline

    env = subprocess_env(CRM_ENV="test", CRM_DATABASE_URL=app.config["CRM_DATABASE_URL"],
                         CRM_INSTANCE_PATH=app.config["CRM_INSTANCE_PATH"], CRM_PLUGINS="notes",
                         **queue_settings)
    worker = start_crm(["worker", "--workers", "1"], env)
    try:
        def done():
            with app.app_context():
                return Note.select().where(Note.title == title).exists()

        assert wait_for(done), "the worker did not run the job"
    finally:
        output = stop_process(worker, signal.SIGINT)
    assert ("Worker for 11 task(s): core.purge_recycle_bin, core.purge_sign_in_records, "
            "core.refresh_planner_statistics, core.run_import, core.scan_duplicates, "
            "core.send_notification_emails, core.send_notification_emails_sweep, "
            "core.snapshot_pipeline, core.store_name_keys, notes.add, notes.nightly_cleanup") in output
    with app.app_context():
        note = Note.get(Note.title == title)
        assert note.version == 1


def test_immediate_mode_runs_jobs_inline(app_factory):
    app = app_factory()
    from crm_notes.models import Note

    response = api_client(app).post("/plugins/notes/enqueue", data={"title": "inline"})
    assert response.status_code == 202
    with app.app_context():
        assert Note.select().where(Note.title == "inline").count() == 1


def test_tasks_are_registered_with_their_schedules(app):
    jobs = app.extensions["crm_jobs"]
    assert jobs.names == ["core.purge_recycle_bin", "core.purge_sign_in_records",
                          "core.refresh_planner_statistics", "core.run_import",
                          "core.scan_duplicates",
                          "core.send_notification_emails", "core.send_notification_emails_sweep",
                          "core.snapshot_pipeline", "core.store_name_keys", "notes.add",
                          "notes.nightly_cleanup"]
    periodic = sorted(task.name for task in jobs.huey._registry.periodic_tasks)
    assert periodic == ["core.purge_recycle_bin", "core.purge_sign_in_records",
                        "core.refresh_planner_statistics", "core.send_notification_emails_sweep",
                        "core.snapshot_pipeline", "notes.nightly_cleanup"]
    with pytest.raises(KeyError, match="no task 'notes.nope'; registered: core.purge_recycle_bin, "
                                       "core.purge_sign_in_records, core.refresh_planner_statistics, "
                                       "core.run_import, core.scan_duplicates, "
                                       "core.send_notification_emails, core.send_notification_emails_sweep, "
                                       "core.snapshot_pipeline, core.store_name_keys, notes.add, "
                                       "notes.nightly_cleanup"):
        jobs.enqueue("notes.nope")


def test_worker_refuses_to_run_in_immediate_mode(tmp_path, crm_database_url):
    env = subprocess_env(CRM_ENV="test", CRM_DATABASE_URL=crm_database_url,
                         CRM_INSTANCE_PATH=tmp_path, CRM_JOBS_IMMEDIATE=1, CRM_PLUGINS="")
    result = subprocess.run([sys.executable, "-m", "crm_core", "worker"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "CRM_JOBS_IMMEDIATE is on" in result.stderr


def test_sqlite_queue_lives_in_the_instance_folder(tmp_path, crm_database_url):
    app = create_app({**base_config(crm_database_url, tmp_path), "CRM_JOBS_IMMEDIATE": False,
                      "CRM_PLUGINS": []})
    assert app.extensions["crm_jobs"].huey.storage.filename == str(tmp_path / "jobs.sqlite3")
    app.extensions["crm_db"].close_all()
