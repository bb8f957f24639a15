"""Who and what caused the rows the history triggers write (django-pghistory), set once per
transaction.

``pghistory.context`` labels changes by prefixing every write statement with a
``SELECT set_config(...);``. PostgreSQL refuses two statements in one parameterised query,
which is what our server-side-binding cursors send (settings.DATABASES explains why they are
used), so that prefix cannot work here. Setting the same two transaction-local variables once,
with their own statement, gives the triggers the same context: they read it from
``current_setting`` for every tracked write until the transaction ends.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from django.db import connection
from pghistory import config


def history_context_set(**metadata: Any) -> uuid.UUID:
    """Label every tracked change of the current transaction from here on with ``metadata``
    (e.g. the user and the action); returns the context id the history rows will carry."""
    if not connection.in_atomic_block:
        # Outside a transaction the variables would vanish with this very statement.
        raise RuntimeError("history_context_set needs a transaction (transaction.atomic)")
    context_id = uuid.uuid4()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('pghistory.context_id', %s, true), "
            "set_config('pghistory.context_metadata', %s, true)",
            [str(context_id), json.dumps(metadata, cls=config.json_encoder())],
        )
    return context_id
