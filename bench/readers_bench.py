"""Readers benchmark: 50 simulated radiologists against the served app on PostgreSQL.

    python bench/readers_bench.py [--port 8106] [--readers 50] [--think 45] [--saturate 20]
                                  [--outage 30] [--postgres private|shared]

What it does, in order:
1. starts a PostgreSQL cluster of its own (``--postgres private``, the default: initdb in a
   temporary folder, a free loopback port, fsync and synchronous commit on) or uses
   ``<DATABASE_URL name>_bench`` on the shared server (``--postgres shared``), migrates it and
   seeds one open Med-Gemini study: ``--cases`` imaging studies with an original and an AI
   report, every reader assigned every case;
2. starts the app the way ``make serve`` does (``python -m reviewapp.runner serve``) on
   ``--port``, with ``REDIS_URL`` (required: without Redis the runner serves from one process);
3. phase "think": readers arrive spread over the first 6 s; each opens the next case, waits
   2-6 s, submits, and now and then revises an earlier rating (version check); p50/p95/p99 of
   "open next case" and "submit";
4. phase "saturate": the same with no think time: throughput at saturation;
5. phase "outage": the saturation load while PostgreSQL is restarted twice (``pg_ctl restart
   -m fast`` on the private cluster: every session is cut and in-flight transactions roll
   back). On the shared server, which other databases use, every connection to the benchmark
   database is killed with ``pg_terminate_backend`` instead. Clients retry with the same
   idempotency key;
6. checks the database against what clients were told: every acknowledged rating present with
   the acknowledged version, exactly one write per idempotency key, no rating lost or doubled.

Baseline for comparison: a bare Django view does about 15-25 ms here (the issue's figure).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import psutil
import psycopg

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import common  # noqa: E402
from bench.keepalive import KeepAliveClient, Reply, TransportError  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


@dataclass
class Stats:
    open_ms: list[float] = field(default_factory=list)
    submit_ms: list[float] = field(default_factory=list)
    revise_ms: list[float] = field(default_factory=list)
    retries: int = 0
    errors: list[str] = field(default_factory=list)
    conflicts: int = 0
    done: int = 0

    def summary(self, seconds: float) -> dict[str, object]:
        def figures(values: list[float]) -> dict[str, float]:
            return {
                "n": len(values),
                "p50": round(percentile(values, 50), 1),
                "p95": round(percentile(values, 95), 1),
                "p99": round(percentile(values, 99), 1),
                "mean": round(statistics.fmean(values), 1) if values else float("nan"),
            }

        return {
            "open_next_case_ms": figures(self.open_ms),
            "submit_ms": figures(self.submit_ms),
            "revise_ms": figures(self.revise_ms),
            "ratings_per_s": round(self.done / seconds, 1),
            "retries": self.retries,
            "errors": len(self.errors),
            "error_samples": self.errors[:5],
            "version_conflicts": self.conflicts,
        }


@dataclass
class Ledger:
    """What the server acknowledged to clients: the truth the database must match."""

    versions: dict[str, int] = field(default_factory=dict)  # assignment id -> version
    keys: set[str] = field(default_factory=set)


def _database_urls(port: int) -> tuple[str, str, str]:
    base = os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/radreview")
    parts = urlsplit(base)
    name = parts.path.lstrip("/") + "_bench"
    bench = urlunsplit(parts._replace(path=f"/{name}"))
    admin = urlunsplit(parts._replace(path="/postgres"))
    return bench, admin, name


def database_reset(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name]
        )
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def seed(*, readers: int, cases: int) -> tuple[list[str], str]:
    """Migrate and seed; return the readers' API tokens and the study id."""
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "reviewapp.settings")
    django.setup()
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    from reviewapp.accounts.services import roles_ensure
    from reviewapp.core.roles import Role
    from reviewapp.imaging.models import Study
    from reviewapp.reports.models import Report
    from reviewapp.studies import services

    call_command("migrate", verbosity=0)
    roles_ensure()
    user_model = get_user_model()
    coordinator = user_model.objects.create(username="bench-coordinator")
    coordinator.groups.add(Group.objects.get(name=Role.COORDINATOR.value))
    reader_group = Group.objects.get(name=Role.READER.value)
    users = []
    for index in range(readers):
        # API tokens only: no password hashing to slow the seeding down.
        user = user_model.objects.create(username=f"bench-reader-{index:02d}")
        user.set_unusable_password()
        user.save()
        user.groups.add(reader_group)
        users.append(user)
    imaging = []
    for index in range(cases):
        study = Study.objects.create(
            study_instance_uid=f"2.25.{uuid.uuid4().int}",
            patient_pseudonym=f"BENCH{index}",
            modalities="CR",
            stratum="normal" if index % 3 else "abnormal",
        )
        Report.objects.create(
            study=study,
            kind=Report.Kind.ORIGINAL,
            findings=f"Heart size normal. Lungs clear. Bench case {index}.",
            impression="No acute process.",
        )
        Report.objects.create(
            study=study,
            kind=Report.Kind.AI,
            findings=f"The lungs are clear. Normal cardiac silhouette. Case {index}.",
            impression="Normal chest.",
        )
        imaging.append(study)
    reader_study = services.reader_study_create(
        user=coordinator, name="Bench", protocol_key="medgemini_cxr", ask_ai_guess=True
    )
    services.cases_add(
        reader_study=reader_study,
        imaging_studies=imaging,
        candidate_reports=Report.objects.filter(kind=Report.Kind.AI),
    )
    services.panel_set(reader_study=reader_study, readers=[(u, "") for u in users])
    services.assignments_generate(reader_study=reader_study, seed=2024)
    services.reader_study_open(reader_study=reader_study, acknowledged_by=coordinator)
    tokens = [Token.objects.create(user=u).key for u in users]
    return tokens, str(reader_study.public_id)


async def with_retries(stats: Stats, send, *, what: str) -> Reply | None:
    """Send until the server answers something other than a 5xx or a broken connection."""
    delay = 0.1
    for _attempt in range(40):
        try:
            response = await send()
        except TransportError as error:
            stats.retries += 1
            last = f"{what}: {type(error).__name__}"
        else:
            if response.status_code < 500:
                return response
            stats.retries += 1
            last = f"{what}: HTTP {response.status_code}"
        await asyncio.sleep(delay)
        delay = min(delay * 2, 2.0)
    stats.errors.append(last)
    return None


async def reader_loop(
    *,
    base: str,
    token: str,
    study: str,
    stats: Stats,
    ledger: Ledger,
    stop_at: float,
    think: tuple[float, float],
    rng: random.Random,
) -> None:
    headers = {"Authorization": f"Token {token}"}
    async with KeepAliveClient(base, headers=headers) as client:
        rated: list[str] = []
        if think[1]:
            # Readers arrive over a think time, not all in the same millisecond: without this
            # the first 50 simultaneous opens, which no reading room produces, fill the p95.
            await asyncio.sleep(rng.uniform(0, think[1]))
        while time.monotonic() < stop_at:
            response = await with_retries(
                stats, lambda: client.get("/api/v1/my/worklist"), what="worklist"
            )
            if response is None:
                return
            entry = next(s for s in response.json()["studies"] if s["id"] == study)
            if entry["next_assignment"] is None:
                return
            assignment = entry["next_assignment"]
            started = time.perf_counter()
            response = await with_retries(
                stats,
                lambda a=assignment: client.get(f"/api/v1/my/assignments/{a}"),
                what="open",
            )
            if response is None:
                return
            stats.open_ms.append((time.perf_counter() - started) * 1000)
            if think[1]:
                await asyncio.sleep(rng.uniform(*think))
            key = str(uuid.uuid4())
            body: dict[str, object] = {
                "answers": {"comparison": rng.choice("abcdef"), "ai_guess": rng.choice("abc")},
                "idempotency_key": key,
                "active_seconds": 3,
            }
            started = time.perf_counter()
            response = await with_retries(
                stats,
                lambda a=assignment, b=body: client.post(
                    f"/api/v1/my/assignments/{a}/rating", json=b
                ),
                what="submit",
            )
            if response is None:
                return
            if response.status_code not in (200, 201):
                stats.errors.append(f"submit: HTTP {response.status_code} {response.text[:120]}")
                return
            stats.submit_ms.append((time.perf_counter() - started) * 1000)
            ledger.versions[assignment] = response.json()["version"]
            ledger.keys.add(key)
            stats.done += 1
            rated.append(assignment)
            if len(rated) > 1 and rng.random() < 0.2:
                earlier = rng.choice(rated[:-1])
                revision_key = str(uuid.uuid4())
                revision: dict[str, object] = {
                    "answers": {"comparison": rng.choice("abcdef"), "ai_guess": "c"},
                    "idempotency_key": revision_key,
                    "version": ledger.versions[earlier],
                }
                started = time.perf_counter()
                response = await with_retries(
                    stats,
                    lambda a=earlier, b=revision: client.put(
                        f"/api/v1/my/assignments/{a}/rating", json=b
                    ),
                    what="revise",
                )
                if response is None:
                    return
                if response.status_code == 409:
                    stats.conflicts += 1
                elif response.status_code == 200:
                    stats.revise_ms.append((time.perf_counter() - started) * 1000)
                    ledger.versions[earlier] = response.json()["version"]
                    ledger.keys.add(revision_key)
                else:
                    stats.errors.append(f"revise: HTTP {response.status_code}")


async def run_phase(
    *,
    base: str,
    tokens: list[str],
    study: str,
    seconds: float,
    think: tuple[float, float],
    ledger: Ledger,
    outage: tuple[Callable[[], object], list[float]] | None = None,
) -> dict[str, object]:
    stats = Stats()
    stop_at = time.monotonic() + seconds
    started = time.monotonic()
    loops = [
        reader_loop(
            base=base,
            token=token,
            study=study,
            stats=stats,
            ledger=ledger,
            stop_at=stop_at,
            think=think,
            rng=random.Random(index),
        )
        for index, token in enumerate(tokens)
    ]
    killed: list[object] = []

    async def disrupt(action: Callable[[], object], moments: list[float]) -> None:
        for moment in moments:
            await asyncio.sleep(moment - (time.monotonic() - started))
            killed.append(await asyncio.to_thread(action))

    baseline: list[float] = []

    async def probe() -> None:
        # The named baseline, measured under the same load: a view that touches nothing.
        async with KeepAliveClient(base) as client:
            while time.monotonic() < stop_at:
                begin = time.perf_counter()
                try:
                    await client.get("/healthz")
                    baseline.append((time.perf_counter() - begin) * 1000)
                except TransportError:
                    pass
                await asyncio.sleep(0.25)

    tasks = [asyncio.create_task(loop) for loop in loops]
    tasks.append(asyncio.create_task(probe()))
    if outage:
        tasks.append(asyncio.create_task(disrupt(*outage)))
    await asyncio.gather(*tasks)
    summary = stats.summary(time.monotonic() - started)
    summary["bare_view_baseline_ms"] = {
        "n": len(baseline),
        "p50": round(percentile(baseline, 50), 1),
        "p95": round(percentile(baseline, 95), 1),
    }
    if outage:
        summary["disruptions"] = killed
    return summary


def verify(ledger: Ledger) -> dict[str, object]:
    from django.db import connections

    from reviewapp.studies.models import Rating, RatingWrite

    connections.close_all()  # ours was killed with the others during the outage phase

    ratings = {
        str(public_id): version
        for public_id, version in Rating.objects.values_list("assignment__public_id", "version")
    }
    lost = [a for a in ledger.versions if a not in ratings]
    wrong_version = [a for a, v in ledger.versions.items() if ratings.get(a) != v]
    writes = list(RatingWrite.objects.values_list("idempotency_key", flat=True))
    keys = {str(k) for k in writes}
    return {
        "acknowledged_ratings": len(ledger.versions),
        "ratings_in_database": len(ratings),
        "lost": len(lost),
        "unacknowledged_extra": len(set(ratings) - set(ledger.versions)),
        "version_mismatch": len(wrong_version),
        "acknowledged_writes": len(ledger.keys),
        "writes_in_database": len(writes),
        "duplicate_writes": len(writes) - len(keys),
        "acknowledged_writes_missing": len(ledger.keys - keys),
    }


class CpuMeter:
    """CPU used by each group of processes during a phase, in cores (CPU seconds per wall
    second): on a 2-core machine this says what bounds the latencies. Processes that end
    during the phase are not counted; the server's and PostgreSQL's live throughout."""

    def __init__(self, groups: dict[str, Callable[[], list[psutil.Process]]]) -> None:
        self.groups = groups
        self.result: dict[str, float] = {}

    @staticmethod
    def _seconds(processes: list[psutil.Process]) -> dict[int, float]:
        seconds = {}
        for process in processes:
            try:
                times = process.cpu_times()
            except psutil.Error:
                continue
            seconds[process.pid] = times.user + times.system
        return seconds

    def _busy(self) -> float:
        times = psutil.cpu_times()
        return float(sum(times) - times.idle - getattr(times, "iowait", 0.0))

    def __enter__(self) -> CpuMeter:
        self.started = time.monotonic()
        self.machine = self._busy()
        self.before = {name: self._seconds(find()) for name, find in self.groups.items()}
        return self

    def __exit__(self, *_: object) -> None:
        wall = time.monotonic() - self.started
        for name, find in self.groups.items():
            after = self._seconds(find())
            used = sum(t - self.before[name].get(pid, 0.0) for pid, t in after.items())
            self.result[name] = round(used / wall, 2)
        self.result["whole_machine"] = round((self._busy() - self.machine) / wall, 2)


def process_tree(pid: int) -> Callable[[], list[psutil.Process]]:
    def find() -> list[psutil.Process]:
        try:
            root = psutil.Process(pid)
            return [root, *root.children(recursive=True)]
        except psutil.Error:
            return []

    return find


def web_processes(runner_pid: int) -> int:
    """How many processes serve HTTP: uvicorn's spawned workers, or uvicorn itself alone."""
    for child in psutil.Process(runner_pid).children():
        if "uvicorn" in " ".join(child.cmdline()):
            workers = [
                worker
                for worker in child.children()
                if "spawn_main" in " ".join(worker.cmdline())  # not the resource tracker
            ]
            return len(workers) or 1
    raise SystemExit("no uvicorn process under the server")


def postmaster_tree(data_dir: Path) -> Callable[[], list[psutil.Process]]:
    def find() -> list[psutil.Process]:
        try:
            pid = int((data_dir / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return []  # between the two halves of a restart
        return process_tree(pid)()

    return find


def terminate_connections(admin_url: str, name: str) -> Callable[[], object]:
    def action() -> object:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            rows = conn.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                [name],
            ).fetchall()
        return {"connections_terminated": len(rows)}

    return action


def restart_server(server: common.PrivatePostgres) -> Callable[[], object]:
    def action() -> object:
        return {"postgres_restarted_in_s": round(server.restart(), 2)}

    return action


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8106)
    parser.add_argument("--readers", type=int, default=50)
    parser.add_argument("--cases", type=int, default=80)
    parser.add_argument("--think", type=float, default=45, help="seconds of the think phase")
    parser.add_argument("--saturate", type=float, default=20)
    parser.add_argument("--outage", type=float, default=30)
    parser.add_argument(
        "--postgres",
        choices=["private", "shared"],
        default="private",
        help="private: a cluster of the benchmark's own, restarted during the outage phase; "
        "shared: DATABASE_URL's server, whose connections are terminated instead",
    )
    args = parser.parse_args()
    if not os.environ.get("REDIS_URL"):
        # Without Redis `runner serve` falls back to one web process and an in-process channel
        # layer: half the machine, and not the deployment the target is about.
        sys.exit(
            "REDIS_URL must be set (e.g. REDIS_URL=redis://127.0.0.1:6379/2, as `make bench` "
            "does): without Redis the server runs a single web process."
        )
    if args.postgres == "private":
        with common.private_postgres() as server:
            return run(
                args,
                database_url=server.url,
                disrupt=restart_server(server),
                postgres_processes=postmaster_tree(server.data_dir),
            )
    bench_url, admin_url, name = _database_urls(args.port)
    database_reset(admin_url, name)
    return run(args, database_url=bench_url, disrupt=terminate_connections(admin_url, name))


def run(
    args: argparse.Namespace,
    *,
    database_url: str,
    disrupt: Callable[[], object],
    postgres_processes: Callable[[], list[psutil.Process]] | None = None,
) -> int:
    os.environ["DATABASE_URL"] = database_url
    os.environ.setdefault("DJANGO_DEBUG", "1")  # the seeding side only; the server runs without
    os.environ.setdefault("RADREVIEW_DATA_DIR", str(REPO / "var" / "bench"))
    logging.getLogger("httpx").setLevel(logging.WARNING)
    print(f"seeding {args.readers} readers x {args.cases} cases ({args.postgres}) ...", flush=True)
    tokens, study = seed(readers=args.readers, cases=args.cases)
    from django.db import connections

    connections.close_all()

    (REPO / "bench" / "out").mkdir(parents=True, exist_ok=True)
    # The server runs as `make serve` runs it: uvicorn workers, each with a connection pool
    # (RADREVIEW_DB_POOL_MAX, set by the runner), and a Celery worker.
    env = dict(os.environ, DJANGO_DEBUG="0", RADREVIEW_HTTPS="0", PORT=str(args.port))
    server = subprocess.Popen(
        [sys.executable, "-m", "reviewapp.runner", "serve", "--port", str(args.port)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(REPO / "bench" / "out" / "readers_bench_server.log").open("w"),
    )
    base = f"http://127.0.0.1:{args.port}"
    results: dict[str, object] = {
        "readers": args.readers,
        "cases": args.cases,
        "postgres": args.postgres,
        "db_pool_max_per_worker": env.get("RADREVIEW_DB_POOL_MAX", "8"),
    }
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the server did not start")
            time.sleep(0.5)
        results["web_processes"] = web_processes(server.pid)
        ledger = Ledger()
        groups = {
            "web_and_worker": process_tree(server.pid),
            "load_generator": lambda: [psutil.Process()],
        }
        if postgres_processes is not None:
            groups["postgres"] = postgres_processes
        what = "restarted" if args.postgres == "private" else "connections killed"
        phases = [
            ("think", "2-6 s per case", args.think, (2, 6), None),
            ("saturate", "no think time", args.saturate, (0, 0), None),
            ("outage", f"PostgreSQL {what} twice", args.outage, (0.2, 1),
             (disrupt, [args.outage / 3, 2 * args.outage / 3])),
        ]  # fmt: skip
        for name, description, seconds, think, outage in phases:
            print(f"phase {name} ({description}) ...", flush=True)
            with CpuMeter(groups) as meter:
                summary = asyncio.run(
                    run_phase(base=base, tokens=tokens, study=study, seconds=seconds,
                              think=think, ledger=ledger, outage=outage)
                )  # fmt: skip
            summary["cpu_cores"] = meter.result
            results[name] = summary
        results["integrity"] = verify(ledger)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    out = REPO / "bench" / "out"
    out.mkdir(parents=True, exist_ok=True)
    (out / "readers_bench.json").write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))
    integrity = results["integrity"]
    assert isinstance(integrity, dict)
    failed = (
        integrity["lost"]
        or integrity["duplicate_writes"]
        or integrity["version_mismatch"]
        or integrity["acknowledged_writes_missing"]
        or any(
            phase["errors"]  # type: ignore[index]
            for phase in (results["think"], results["saturate"], results["outage"])
        )
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
