"""Helpers shared by the benchmarks: servers on loopback, databases, and a threaded client.

Every server a benchmark starts listens on 127.0.0.1 only, runs in its own process group,
and is stopped (with its children) when the ``with`` block ends, whatever happened inside.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import psycopg
import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
ORTHANC_PLUGIN_DIRS = (Path("/usr/share/orthanc/plugins"), Path("/usr/lib/orthanc"))


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(
    url: str, *, timeout: float = 60.0, process: subprocess.Popen | None = None
) -> None:
    """Return once ``url`` answers at all (any status), or raise with the reason."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with status {process.returncode} before answering")
        try:
            requests.get(url, timeout=5)
            return
        except requests.RequestException:
            # Not listening yet, or still importing Django on a busy machine.
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def process_group_stop(process: subprocess.Popen) -> None:
    """Stop a process started with ``start_new_session`` and everything it started."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextlib.contextmanager
def running(
    command: Sequence[str],
    *,
    ready_url: str,
    env: dict[str, str] | None = None,
    log_path: Path | None = None,
    cwd: Path | None = None,
    timeout: float = 60.0,
) -> Iterator[subprocess.Popen]:
    """Run ``command`` in its own process group until the block ends."""
    log = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115
    process = subprocess.Popen(
        list(command),
        env=env,
        cwd=cwd or REPO_ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_http(ready_url, timeout=timeout, process=process)
        yield process
    finally:
        process_group_stop(process)
        if log_path and log is not subprocess.DEVNULL:
            log.close()  # type: ignore[union-attr]


def database_recreate(database_url: str) -> None:
    """Drop and create the database named in ``database_url`` (benchmark databases only)."""
    base, _, name = database_url.rpartition("/")
    if not name.startswith(("rr_", "test_rr_")) or "bench" not in name:
        raise ValueError(f"refusing to recreate {name!r}: only rr_*bench* databases")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (name,)
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def manage(*args: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "manage.py", *args], cwd=REPO_ROOT, env=env, check=True)


@dataclass
class LoadResult:
    requests: int
    bytes: int
    seconds: float
    errors: list[str]

    @property
    def per_second(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def mb_per_second(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds else 0.0


def load_run(
    jobs: Sequence[Callable[[requests.Session], int]],
    *,
    concurrency: int,
    accept_encoding: str | None = None,
) -> LoadResult:
    """Run every job once across ``concurrency`` threads, each with its own keep-alive
    connection; a job returns the bytes it received. Wall time covers all of them."""
    lock = threading.Lock()
    cursor = iter(range(len(jobs)))
    totals = {"bytes": 0, "done": 0}
    errors: list[str] = []

    def worker() -> None:
        with requests.Session() as session:
            if accept_encoding is not None:
                # requests offers gzip by default, and a server that takes it up (Orthanc does)
                # compresses every frame on the fly; "identity" measures without that.
                session.headers["Accept-Encoding"] = accept_encoding
            while True:
                with lock:
                    index = next(cursor, None)
                if index is None:
                    return
                try:
                    received = jobs[index](session)
                except Exception as exc:
                    with lock:
                        errors.append(f"{type(exc).__name__}: {exc}"[:300])
                    continue
                with lock:
                    totals["bytes"] += received
                    totals["done"] += 1

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    return LoadResult(totals["done"], totals["bytes"], elapsed, errors)


def _postgres_bindir() -> Path:
    """The directory of ``initdb``/``pg_ctl`` (Debian keeps them off PATH, per version)."""
    for name in ("initdb", "pg_ctl"):
        found = shutil.which(name)
        if found:
            return Path(found).resolve().parent
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if not candidates:
        raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found")
    return candidates[-1].parent


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster of the benchmark's own, so that it can be restarted mid-run
    without touching any other database on the machine."""

    url: str
    data_dir: Path
    log_path: Path
    _pg_ctl: list[str]

    def restart(self) -> float:
        """Restart the server the way an operator would (fast shutdown: open sessions are
        cut, in-flight transactions roll back); return how long it was unavailable."""
        started = time.monotonic()
        subprocess.run(
            [*self._pg_ctl, "restart", "-m", "fast", "-w", "-D", str(self.data_dir),
             "-l", str(self.log_path)],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        return time.monotonic() - started


@contextlib.contextmanager
def private_postgres(*, database: str = "radreview_bench") -> Iterator[PrivatePostgres]:
    """initdb a throwaway cluster on a free loopback port, create ``database``, yield it, and
    remove everything afterwards. Durability settings are PostgreSQL's defaults (fsync and
    synchronous commit on), as in production. As root the server runs as the ``postgres``
    system user, since PostgreSQL refuses to run as root."""
    bindir = _postgres_bindir()
    as_postgres: list[str] = []
    if os.geteuid() == 0:
        as_postgres = ["runuser", "-u", "postgres", "--"]
    root = Path(tempfile.mkdtemp(prefix="radreview-bench-pg-"))
    data_dir, log_path = root / "data", root / "server.log"
    if as_postgres:
        shutil.chown(root, user="postgres")
    port = free_port()
    pg_ctl = [*as_postgres, str(bindir / "pg_ctl")]
    try:
        subprocess.run(
            [*as_postgres, str(bindir / "initdb"), "-D", str(data_dir), "-U", "postgres",
             "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root}"
        subprocess.run(
            [*pg_ctl, "start", "-w", "-D", str(data_dir), "-l", str(log_path), "-o", options],
            check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        admin = f"postgres://postgres@127.0.0.1:{port}/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{database}"')
        yield PrivatePostgres(
            url=f"postgres://postgres@127.0.0.1:{port}/{database}",
            data_dir=data_dir,
            log_path=log_path,
            _pg_ctl=pg_ctl,
        )
    finally:
        subprocess.run(
            [*pg_ctl, "stop", "-m", "immediate", "-D", str(data_dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        shutil.rmtree(root, ignore_errors=True)


def bench_database_use(suffix: str) -> str:
    """Point this process (and its children) at a benchmark's own database, creating it:
    ``BENCH_DATABASE_URL``, else ``DATABASE_URL``'s name plus ``suffix``. Returns its name."""
    from urllib.parse import urlsplit, urlunsplit

    url = os.environ.get("BENCH_DATABASE_URL")
    if not url:
        base = urlsplit(
            os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/radreview")
        )
        url = urlunsplit(base._replace(path=base.path.rstrip("/") + suffix))
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
    os.environ["DATABASE_URL"] = url
    return name


# --- Orthanc (Debian packages orthanc and orthanc-dicomweb) ---------------------------------


def orthanc_plugin() -> Path:
    for folder in ORTHANC_PLUGIN_DIRS:
        for candidate in sorted(folder.glob("libOrthancDicomWeb.so*")):
            return candidate
    raise SystemExit("Orthanc's DICOMweb plugin is not installed (Debian: orthanc-dicomweb)")


def orthanc_binary() -> str:
    found = shutil.which("Orthanc") or (
        "/usr/sbin/Orthanc" if Path("/usr/sbin/Orthanc").exists() else None
    )
    if not found:
        raise SystemExit("Orthanc is not installed (Debian: orthanc)")
    return found


def orthanc_config(
    folder: Path, *, port: int, dicomweb_servers: dict[str, object] | None = None
) -> Path:
    """An Orthanc on loopback with DICOMweb only; ``dicomweb_servers``: the remote DICOMweb
    servers it may query, retrieve from and push to (the plugin's ``Servers`` option)."""
    config = {
        "Name": "radreview-bench",
        "StorageDirectory": str(folder / "storage"),
        "IndexDirectory": str(folder / "index"),
        "HttpPort": port,
        "RemoteAccessAllowed": False,  # loopback only
        "AuthenticationEnabled": False,
        "DicomServerEnabled": False,  # no DIMSE port: DICOMweb only
        "StorageCompression": False,
        "Plugins": [str(orthanc_plugin())],
        "DicomWeb": {
            "Enable": True,
            "Root": "/dicom-web/",
            "EnableWado": True,
            "Ssl": False,
            "Servers": dicomweb_servers or {},
        },
    }
    path = folder / "orthanc.json"
    path.write_text(json.dumps(config, indent=2))
    return path


def heap_used_after_gc(page) -> int:
    """A Playwright page's JS heap in use after a full garbage collection, in bytes (the
    viewer benchmark's long sitting and the 50-case browser test)."""
    cdp = page.context.new_cdp_session(page)
    try:
        cdp.send("HeapProfiler.collectGarbage")
        return int(cdp.send("Runtime.getHeapUsage")["usedSize"])
    finally:
        cdp.detach()
