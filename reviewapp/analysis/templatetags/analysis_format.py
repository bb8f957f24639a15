"""Number formats of the analysis page, in one place so the page and its tests agree."""

from __future__ import annotations

import base64
import math
from typing import Any

from django import template

register = template.Library()
MISSING = "\u2013"


@register.filter
def pct(value: Any) -> str:
    """0.5714 -> "57.1%"; missing -> an en dash."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return f"{100 * float(value):.1f}%"


@register.filter
def num(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    return f"{float(value):.{int(digits)}f}"


@register.filter
def svg_data_uri(svg: str) -> str:
    """An SVG document as a data: URI for <img> (no script runs in an image; CSP allows it)."""
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")
