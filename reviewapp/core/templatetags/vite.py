"""``{% vite_entry "page" %}``: the script and style tags of one Vite page bundle."""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from django import template
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.templatetags.static import static
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

register = template.Library()

MANIFEST_PATH = Path(settings.BASE_DIR) / "static" / "dist" / "manifest.json"


def _read_manifest() -> dict[str, Any]:
    try:
        return json.loads(MANIFEST_PATH.read_text())
    except FileNotFoundError:
        raise ImproperlyConfigured(
            "The front-end bundle is not built (static/dist/manifest.json is missing); "
            "run `make install` or `npm ci && npm run build`."
        ) from None


_cached_manifest = lru_cache(maxsize=1)(_read_manifest)


def manifest() -> dict[str, Any]:
    return _read_manifest() if settings.DEBUG else _cached_manifest()


@register.simple_tag
def vite_entry(page: str) -> SafeString:
    entries = manifest()
    key = f"pages/{page}.js"
    if key not in entries:
        raise ImproperlyConfigured(f"No Vite entry {key!r}; is static/src/{key} built?")
    chunk = entries[key]
    css: list[str] = list(chunk.get("css", []))
    for imported in chunk.get("imports", []):
        css.extend(entries.get(imported, {}).get("css", []))
    styles = format_html_join(
        "", '<link rel="stylesheet" href="{}">', ((static(f"dist/{c}"),) for c in css)
    )
    script = format_html(
        '<script type="module" src="{}"></script>', static(f"dist/{chunk['file']}")
    )
    return format_html("{}{}", styles, script)


@register.simple_tag
def vite_preload(page: str) -> SafeString:
    """``<link rel="modulepreload">`` for a page's entry and the chunks it imports, lazily too.

    For the page head: the browser fetches (and compiles off the main thread) what the entry
    would ask for only once it runs, such as the viewer's 3.6 MB imaging engine.
    """
    entries = manifest()
    key = f"pages/{page}.js"
    if key not in entries:
        raise ImproperlyConfigured(f"No Vite entry {key!r}; is static/src/{key} built?")
    files: list[str] = []
    pending = [key]
    seen: set[str] = set()
    while pending:
        name = pending.pop(0)
        chunk = entries.get(name)
        if name in seen or chunk is None or not chunk["file"].endswith(".js"):
            continue
        seen.add(name)
        files.append(chunk["file"])
        # Only the entry's own lazy imports (the engine), not the codecs it loads on demand.
        pending.extend(chunk.get("imports", []))
        if name == key:
            pending.extend(chunk.get("dynamicImports", []))
    return format_html_join(
        "", '<link rel="modulepreload" href="{}">', ((static(f"dist/{f}"),) for f in files)
    )
