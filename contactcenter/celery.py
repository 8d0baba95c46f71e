"""The Celery app: configured from Django settings (CELERY_ namespace), tasks autodiscovered."""

import os
from typing import Any

from celery import Celery, signals

from contactcenter.logs import bind_celery_task

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contactcenter.settings")

app = Celery("contactcenter")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.task_prerun.connect
def _bind_call(sender: Any = None, task: Any = None, args: Any = None, kwargs: Any = None, **_: Any) -> None:
    """Log lines of a task about a call carry that call's id (contactcenter/logs.py)."""
    bind_celery_task(task, args, kwargs)
