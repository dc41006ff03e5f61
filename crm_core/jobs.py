"""Background jobs on huey: SQLite storage in the instance folder, or Redis.

Plugins register ``TaskSpec`` objects through ``crm_register_tasks``; each
application builds its own huey instance and registers the tasks under
``<owner>.<name>``. ``crm worker`` runs the consumer (and the schedules).
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from huey import MemoryHuey, RedisHuey, SqliteHuey

from crm_core.db import database
from crm_core.errors import RegistryError

log = logging.getLogger("crm.jobs")


@dataclass(frozen=True)
class TaskSpec:
    """A background task. ``schedule`` (a ``huey.crontab``) makes it periodic."""

    name: str
    func: Callable[..., Any]
    schedule: Callable | None = None
    retries: int = 0
    retry_delay: int = 0
    priority: int | None = None

    def validate(self, owner):
        if not self.name or not self.name.replace("_", "").isalnum():
            raise RegistryError(f"{owner}: task name {self.name!r} must be letters, digits and _")
        if not callable(self.func):
            raise RegistryError(f"{owner}: task {self.name!r} has no callable func")


def make_huey(settings):
    """The queue for these settings; tests and dev may run jobs inline."""
    if settings.get("CRM_JOBS_IMMEDIATE"):
        return MemoryHuey("crm", immediate=True, utc=True)
    if settings.get("CRM_REDIS_URL"):
        return RedisHuey("crm", url=settings["CRM_REDIS_URL"], utc=True)
    path = Path(settings["CRM_INSTANCE_PATH"]) / "jobs.sqlite3"
    path.parent.mkdir(parents=True, exist_ok=True)
    return SqliteHuey("crm", filename=str(path), utc=True)


class Jobs:
    """The application's queue and its registered tasks."""

    def __init__(self, app, huey):
        self.app = app
        self.huey = huey
        self._tasks: dict[str, Any] = {}

    def register(self, full_name, spec):
        runner = self._in_app_context(spec.func)
        if spec.schedule is not None:
            wrapper = self.huey.periodic_task(spec.schedule, name=full_name, retries=spec.retries,
                                              retry_delay=spec.retry_delay)(runner)
        else:
            wrapper = self.huey.task(name=full_name, retries=spec.retries,
                                     retry_delay=spec.retry_delay,
                                     priority=spec.priority)(runner)
        self._tasks[full_name] = wrapper

    def _in_app_context(self, func):
        app = self.app

        @functools.wraps(func)
        def run(*args, **kwargs):
            with app.app_context(), database.connection_context():
                return func(*args, **kwargs)

        return run

    @property
    def names(self):
        return sorted(self._tasks)

    def enqueue(self, name, *args, **kwargs):
        """Queue task ``name``; returns huey's Result handle."""
        try:
            task = self._tasks[name]
        except KeyError:
            raise KeyError(f"no task {name!r}; registered: {', '.join(self.names) or 'none'}")
        return task(*args, **kwargs)

    def consumer(self, workers=2, worker_type="thread", periodic=True):
        return self.huey.create_consumer(workers=workers, worker_type=worker_type,
                                         periodic=periodic, check_worker_health=True)
