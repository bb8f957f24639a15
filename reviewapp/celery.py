"""Celery application: a ``default`` queue for imports, exports and analysis and a ``gpu``
queue for report generation (one worker process per GPU). Configuration lives in settings
(``CELERY_*``) so that importing this module touches nothing."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")

app = Celery("reviewapp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
