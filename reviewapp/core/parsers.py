"""The API's JSON parser (settings.REST_FRAMEWORK names it; kept apart from rest_framework.views,
which reads that setting when it is imported)."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions, parsers


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, refusing with 400 what would otherwise fail later as a 500: nesting
    deeper than MAX_DEPTH (Python's parser and every recursive walk of the data overflow
    the stack) and NUL characters, which PostgreSQL cannot store in text or jsonb."""

    MAX_DEPTH = 64

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        try:
            data = super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError(_TOO_DEEP.format(self.MAX_DEPTH)) from None
        _json_check(data, self.MAX_DEPTH)
        return data


_TOO_DEEP = "JSON parse error - nested deeper than {} levels."


def _json_check(data: Any, max_depth: int) -> None:
    # Iterative: a recursive walk would overflow on the very input it guards against.
    pending: list[tuple[Any, int]] = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            if "\x00" in value:
                raise exceptions.ParseError(
                    "JSON parse error - text may not contain NUL (\\u0000)."
                )
            continue
        if not isinstance(value, dict | list):
            continue
        if depth > max_depth:
            raise exceptions.ParseError(_TOO_DEEP.format(max_depth))
        items = list(value.items()) if isinstance(value, dict) else [(None, v) for v in value]
        for key, item in items:
            if isinstance(key, str) and "\x00" in key:
                raise exceptions.ParseError(
                    "JSON parse error - text may not contain NUL (\\u0000)."
                )
            pending.append((item, depth + 1))
