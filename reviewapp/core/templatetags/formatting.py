"""Template filters that present stored values to people."""

from __future__ import annotations

import json
from typing import Any

from django import template
from django.core.serializers.json import DjangoJSONEncoder

register = template.Library()


@register.filter
def pretty_json(value: Any) -> str:
    """Indent a JSON value for a <pre> block, keys in their stored order.

    The result stays a plain string, so the template escapes it: a record can carry text from
    a model's output or a DICOM file.
    """
    return json.dumps(value, indent=2, ensure_ascii=False, cls=DjangoJSONEncoder)
