"""Run radreview's processes in the foreground: ``python -m reviewapp.runner demo|serve|web``.

``serve`` starts the web server (uvicorn, ASGI), a Celery worker and the DICOM receiver
(C-STORE SCP on RADREVIEW_DICOM_PORT, default 11112, 0 for none) against the configured
services (DATABASE_URL, REDIS_URL, PORT); ``web`` runs that web server alone. ``demo`` does
the same as ``serve`` after migrating and seeding demo users and studies. Where DATABASE_URL
is not set, an embedded PostgreSQL (the ``pgserver`` wheel) keeps its data in ``var/pgdata``;
where REDIS_URL is not set, Celery uses a folder-backed broker and Channels an in-process
layer. ``check-deploy`` runs Django's deployment checks with production settings.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parent.parent


def _data_dir() -> Path:
    path = Path(os.environ.get("RADREVIEW_DATA_DIR", BASE_DIR / "var"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _local_secrets(data_dir: Path) -> dict[str, str]:
    """Secrets for a single-machine install, made once and kept with the data."""
    path = data_dir / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    values = {
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "RADREVIEW_DEID_SECRET": secrets.token_urlsafe(32),
    }
    path.write_text(json.dumps(values))
    path.chmod(0o600)
    return values


def _embedded_postgres(data_dir: Path) -> str:
    import pgserver  # an optional dependency: only the embedded demo needs it

    # Stopped again when this runner exits: the demo leaves no database server behind.
    server = pgserver.get_server(str(data_dir / "pgdata"), cleanup_mode="stop")
    exists = server.psql("SELECT 1 FROM pg_database WHERE datname = 'radreview';")
    if "1 row" not in exists:
        server.psql("CREATE DATABASE radreview;")
    socket_dir = quote(str(data_dir / "pgdata"), safe="")
    return f"postgres://postgres@{socket_dir}/radreview"


def _environment(*, demo: bool) -> dict[str, str]:
    env = dict(os.environ)
    data_dir = _data_dir()
    env["RADREVIEW_DATA_DIR"] = str(data_dir)
    for key, value in _local_secrets(data_dir).items():
        env.setdefault(key, value)
    env.setdefault("DJANGO_DEBUG", "0")
    env.setdefault("RADREVIEW_HTTPS", "0")  # loopback HTTP; put TLS in front in production
    if not env.get("DATABASE_URL"):
        print("DATABASE_URL not set: using the embedded PostgreSQL in", data_dir / "pgdata")
        env["DATABASE_URL"] = _embedded_postgres(data_dir)
    if not env.get("REDIS_URL"):
        print("REDIS_URL not set: folder-backed Celery broker, in-process Channels layer.")
    if demo:
        env.setdefault("RADREVIEW_DEMO", "1")
    return env


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([sys.executable, str(BASE_DIR / "manage.py"), *args], env=env, check=True)


def web_command(env: dict[str, str], *, host: str, port: int) -> list[str]:
    """The web server's command line: `serve`, `demo`, `web`, the Docker image and the test
    suite all serve the application through this one."""
    # uvicorn with several worker processes uses both cores for frames and ratings; without
    # Redis the in-process channel layer cannot span processes, so one process serves then.
    workers = env.get("RADREVIEW_WEB_WORKERS") or ("2" if env.get("REDIS_URL") else "1")
    # The client's address comes from X-Forwarded-For (and the scheme from X-Forwarded-Proto)
    # only when the connection comes from a proxy named here; otherwise anyone could pick the
    # address the login lockout is keyed on. uvicorn trusts 127.0.0.1 unless told otherwise.
    proxies = ",".join(
        p.strip() for p in env.get("RADREVIEW_TRUSTED_PROXIES", "").split(",") if p.strip()
    )
    forwarded = (
        ["--proxy-headers", "--forwarded-allow-ips", proxies] if proxies else ["--no-proxy-headers"]
    )
    return [
        sys.executable, "-m", "uvicorn", "reviewapp.asgi:application", "--host", host,
        "--port", str(port), "--workers", workers, "--lifespan", "off", "--no-access-log",
        *forwarded,
        # Readers pause seconds between requests; uvicorn's 5 s default would make their
        # browsers reconnect for nearly every case.
        "--timeout-keep-alive", "30",
        # uvicorn replaces a worker that does not answer its health ping in time; a worker still
        # importing the app on a busy machine cannot answer (extension modules hold the GIL
        # while they load), and the default 5 s had it replace every worker before it served.
        "--timeout-worker-healthcheck", env.get("RADREVIEW_WORKER_HEALTHCHECK_S", "60"),
    ]  # fmt: skip


def dicom_receiver_command(env: dict[str, str]) -> list[str] | None:
    """The DICOM receiver's command line (C-STORE SCP), or None where RADREVIEW_DICOM_PORT=0."""
    if env.get("RADREVIEW_DICOM_PORT", "").strip() == "0":
        return None
    # Host, port, AE title and allow-list come from settings, which check them.
    return [sys.executable, str(BASE_DIR / "manage.py"), "dicom_receiver"]


def web_environment(env: dict[str, str]) -> dict[str, str]:
    """The web server's environment: ``env`` with a connection pool per process unless set
    (without one every request opens a new PostgreSQL backend)."""
    web_env = dict(env)
    web_env.setdefault("RADREVIEW_DB_POOL_MAX", "8")
    return web_env


def _run_processes(env: dict[str, str], *, host: str, port: int) -> int:
    web = web_command(env, host=host, port=port)
    worker = [
        sys.executable, "-m", "celery", "-A", "reviewapp", "worker", "-B",
        "-Q", "default,gpu", "--concurrency", env.get("RADREVIEW_WORKER_CONCURRENCY", "2"),
        "--loglevel", "INFO", "-s", str(_data_dir() / "celerybeat-schedule"),
    ]  # fmt: skip
    children = [
        subprocess.Popen(web, env=web_environment(env), cwd=BASE_DIR),
        subprocess.Popen(worker, env=env, cwd=BASE_DIR),
    ]
    receiver = dicom_receiver_command(env)
    if receiver is not None:
        children.append(subprocess.Popen(receiver, env=env, cwd=BASE_DIR))

    def stop(*_: object) -> None:
        for child in children:
            if child.poll() is None:
                child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"\nradreview is running at http://{host}:{port}/  (Ctrl-C stops it)\n", flush=True)
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
    finally:
        stop()
        for child in children:
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
    return max((child.returncode or 0) for child in children)


def _check_deploy() -> None:
    # Production settings only: nothing a development shell or test run exported may leak in.
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_ALLOW_ASYNC_UNSAFE"}
    env.update(
        DJANGO_DEBUG="0",
        RADREVIEW_HTTPS="1",
        DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
        RADREVIEW_DEID_SECRET=secrets.token_urlsafe(32),
        DJANGO_ALLOWED_HOSTS="radreview.example.org",
    )
    _manage(env, "check", "--deploy", "--fail-level", "WARNING")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reviewapp.runner")
    parser.add_argument(
        "command", choices=["demo", "serve", "web", "check-deploy", "backup", "restore"]
    )
    parser.add_argument("folder", nargs="?", help="backup/restore: the backup's folder")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    args = parser.parse_args(argv)
    if args.command == "check-deploy":
        _check_deploy()
        return 0
    if args.command == "web":
        # The web server alone, in this process's place, on the environment as it is (the
        # Docker image after its migrations, the test suite on its own database).
        env = web_environment(dict(os.environ))
        command = web_command(env, host=args.host, port=args.port)
        os.execve(command[0], command, env)  # noqa: S606 (our own argv, no shell)
    demo = args.command == "demo"
    env = _environment(demo=demo)
    if args.command in ("backup", "restore"):
        # The same environment `serve` uses, so the embedded database is found as well.
        if not args.folder:
            parser.error(f"{args.command} needs a folder")
        try:
            _manage(env, args.command, args.folder)
        except subprocess.CalledProcessError as exc:
            return exc.returncode  # the command has said why
        return 0
    _manage(env, "migrate", "--noinput")
    _manage(env, "collectstatic", "--noinput", "--verbosity", "0")
    if demo:
        _manage(env, "seed_demo")
    return _run_processes(env, host=args.host, port=args.port)


if __name__ == "__main__":
    sys.exit(main())
