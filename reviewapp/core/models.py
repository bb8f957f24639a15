"""Shared model bases.

Glossary: a *public id* is the UUID that leaves the database (URLs, API, exports); sequential
primary keys never do, because their order would tell a reader which row was made first.
"""

import uuid

from django.db import models


class TimestampedModel(models.Model):
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True
