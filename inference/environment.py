"""Software and hardware versions for the reproducibility record.

Nothing here initialises CUDA unless it is already in use: asking for the GPU name in a worker
parent before it forks would break every child's CUDA context.
"""

from __future__ import annotations

import hashlib
import platform
import sys
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def software_versions() -> dict[str, Any]:
    return dict(_software_versions())


@lru_cache(maxsize=1)
def _software_versions() -> dict[str, Any]:
    # Package metadata is read from disk; it cannot change under a running process.
    versions: dict[str, Any] = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }
    for package in ("torch", "transformers", "tokenizers", "numpy", "pydicom", "pillow", "httpx"):
        versions[package] = _version(package)
    return versions


def device_versions(device: str) -> dict[str, Any]:
    """CUDA and GPU versions when ``device`` is a CUDA device (already initialised there)."""
    info: dict[str, Any] = {"device": device}
    if not device.startswith("cuda"):
        return info
    import torch

    info["cuda"] = torch.version.cuda
    info["cudnn"] = torch.backends.cudnn.version()
    index = torch.device(device).index or 0
    info["gpu"] = torch.cuda.get_device_name(index)
    info["gpu_capability"] = list(torch.cuda.get_device_capability(index))
    info["gpu_memory_bytes"] = torch.cuda.get_device_properties(index).total_memory
    return info


@lru_cache(maxsize=32)
def _hash_file(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def weight_hashes(directory: Path) -> dict[str, str]:
    """SHA-256 of each weight file, cached per process by size and mtime (large files)."""
    hashes = {}
    for path in sorted(directory.rglob("*")):
        if path.is_file() and path.name.endswith(WEIGHT_SUFFIXES):
            stat = path.stat()
            hashes[str(path.relative_to(directory))] = _hash_file(
                str(path), stat.st_size, stat.st_mtime_ns
            )
    return hashes
