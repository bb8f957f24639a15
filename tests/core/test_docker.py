"""The production stack description stays valid and keeps its promises."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import yaml

from tests.conftest import REPO_ROOT

COMPOSE = REPO_ROOT / "docker" / "compose.yaml"


def _compose_command() -> list[str]:
    if shutil.which("docker"):
        probe = subprocess.run(["docker", "compose", "version"], capture_output=True, check=False)
        if probe.returncode == 0:
            return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    pytest.fail("Neither `docker compose` nor `docker-compose` is installed (.ci/run installs it).")


def test_compose_file_is_valid() -> None:
    result = subprocess.run(
        [*_compose_command(), "-f", str(COMPOSE), "config", "--quiet"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_stack_has_every_process_of_the_design() -> None:
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert set(services) >= {"web", "worker", "gpu-worker", "postgres", "redis"}
    gpu = services["gpu-worker"]
    assert "-Q gpu" in gpu["command"]
    assert "--concurrency 1" in gpu["command"]
    assert gpu["runtime"] == "nvidia"
    # Queued jobs must survive a Redis restart.
    assert "--appendonly yes" in services["redis"]["command"]
    # PACS push: the DICOM receiver listens beyond the container's loopback, on its port.
    assert "dicom_receiver --host 0.0.0.0" in services["dicom"]["command"]
    assert "11112:11112" in services["dicom"]["ports"]
