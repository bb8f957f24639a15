from __future__ import annotations

import pytest

from reviewapp.core.history import history_context_set


@pytest.mark.django_db(transaction=True)
def test_a_history_label_outside_a_transaction_is_refused_not_lost() -> None:
    # Transaction-local settings would end with the statement that set them: the changes that
    # follow would be recorded as made outside the application.
    with pytest.raises(RuntimeError, match="needs a transaction"):
        history_context_set(user=1, action="rating_submit")
