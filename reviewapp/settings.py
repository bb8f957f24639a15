"""Django settings for radreview, read from the environment (see README "Configuration")."""

from __future__ import annotations

import re
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from reviewapp.env import env_bool, env_int, env_list, env_optional, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("RADREVIEW_DATA_DIR", str(BASE_DIR / "var")))

DEBUG = env_bool("DJANGO_DEBUG", False)
_INSECURE_DEV_KEY = "insecure-dev-key-only-for-debug-and-tests-0123456789abcdef"
SECRET_KEY = env_str("DJANGO_SECRET_KEY", _INSECURE_DEV_KEY if DEBUG else None)
if not DEBUG and SECRET_KEY == _INSECURE_DEV_KEY:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set to a real secret when DEBUG is off.")

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

# Behind TLS in production: secure cookies, HSTS, redirect. The demo and the test live server
# speak plain HTTP on loopback, so they switch this off explicitly.
HTTPS = env_bool("RADREVIEW_HTTPS", not DEBUG)
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_SSL_REDIRECT = HTTPS and env_bool("RADREVIEW_SSL_REDIRECT", True)
SECURE_HSTS_SECONDS = 31536000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS else None
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_HTTPONLY = False  # the reading page's fetch() reads it to send X-CSRFToken
SESSION_COOKIE_AGE = env_int("RADREVIEW_SESSION_SECONDS", 12 * 3600, minimum=300)
X_FRAME_OPTIONS = "DENY"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "axes",
    "csp",
    "pgtrigger",
    "pghistory",
    "reviewapp.core",
    "reviewapp.accounts",
    "reviewapp.imaging",
    "reviewapp.reports",
    "reviewapp.generation",
    "reviewapp.studies",
    "reviewapp.analysis",
    "reviewapp.metrics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before authentication: a CORS preflight carries no credentials.
    "reviewapp.imaging.dicomweb.cors.DicomwebCorsMiddleware",
    "reviewapp.core.middleware.QueryStringNulMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "reviewapp.urls"
WSGI_APPLICATION = "reviewapp.wsgi.application"
ASGI_APPLICATION = "reviewapp.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "reviewapp.core.context_processors.roles",
            ],
        },
    },
]

# PostgreSQL only: the rating history relies on its triggers and row locks.
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/radreview"),
        # A persistent connection is kept per thread; the web server pools them instead.
        conn_max_age=env_int("RADREVIEW_DB_CONN_MAX_AGE", 0, minimum=0),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL (postgres://...).")
# Parameters travel apart from the SQL (PostgreSQL's extended protocol) instead of being
# quoted into it: the server then plans a reading-page query in about a third of the time
# (0.3 against 1.2 ms measured for the case read), and psycopg prepares a statement a
# connection has run 5 times, so the hot reads of a pooled connection are not planned again.
# Two consequences: a query may hold one statement only (see core/history.py), and a
# migration that changes a table must be followed by a restart of the web and worker
# processes, whose prepared statements describe the old columns.
DATABASES["default"].setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=5)
# The web server sets RADREVIEW_DB_POOL_MAX (`runner serve`, the Docker image): without a pool
# every request pays for a new PostgreSQL backend. The pool lends a checked connection per
# request and caps how many the process holds (back-pressure instead of exhausting
# max_connections). Celery workers and management commands keep plain connections: a pool
# must not cross a fork.
DB_POOL_MAX = env_int("RADREVIEW_DB_POOL_MAX", 0, minimum=0)
# Threads per web process that run Django's HTTP requests (a2wsgi, see asgi.py); as
# many as the pool has connections, so a thread never waits for one.
WEB_THREADS = env_int("RADREVIEW_WEB_THREADS", DB_POOL_MAX or 8, minimum=1)
if DB_POOL_MAX:
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": min(2, DB_POOL_MAX),
        "max_size": DB_POOL_MAX,
        "timeout": env_int("RADREVIEW_DB_POOL_TIMEOUT", 10, minimum=1),
    }  # conn_health_checks makes the pool check each connection before lending it
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "reviewapp.accounts.services.PasswordChangeRevokesApiToken"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "reviewapp.accounts.authentication.RolesModelBackend",
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"

# Lock out a username from one address after repeated failures, without letting one attacker
# lock a radiologist out from everywhere.
AXES_FAILURE_LIMIT = env_int("RADREVIEW_LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = 0.25  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
# REMOTE_ADDR only: the web server puts the client's address there, taking it from
# X-Forwarded-For only when the connection comes from one of RADREVIEW_TRUSTED_PROXIES (see
# runner.web_command). A client must never choose its own lockout key.
AXES_IPWARE_META_PRECEDENCE_ORDER = ["REMOTE_ADDR"]
RADREVIEW_TRUSTED_PROXIES = env_list("RADREVIEW_TRUSTED_PROXIES", [])
# API tokens expire (a leaked script token is not a key for ever); a new one is issued by
# the token exchange. A password change or the owner or an admin revokes them at once.
RADREVIEW_TOKEN_TTL_DAYS = env_int("RADREVIEW_TOKEN_TTL_DAYS", 30, minimum=1)
# Reader invitations: a one-time link to set a password, valid this many days; how many
# invitations one person may send (or send again) an hour, so that a stolen coordinator
# session cannot turn the server into a mail cannon.
RADREVIEW_INVITATION_TTL_DAYS = env_int("RADREVIEW_INVITATION_TTL_DAYS", 7, minimum=1)
RADREVIEW_INVITATIONS_PER_HOUR = env_int("RADREVIEW_INVITATIONS_PER_HOUR", 100, minimum=1)

# E-mail (reader invitations). Without a mail server the messages go to the process's output
# (Django's console backend, the demo's) and the invitations page shows each one-time link
# for the coordinator to pass on; with one, the link reaches only the invited address.
EMAIL_HOST = env_str("RADREVIEW_EMAIL_HOST", "")
if EMAIL_HOST:
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_PORT = env_int("RADREVIEW_EMAIL_PORT", 587, minimum=1)
    EMAIL_HOST_USER = env_str("RADREVIEW_EMAIL_USER", "")
    EMAIL_HOST_PASSWORD = env_str("RADREVIEW_EMAIL_PASSWORD", "")
    EMAIL_USE_TLS = env_bool("RADREVIEW_EMAIL_TLS", True)
    # A mail server that stops answering must not hold a coordinator's request for ever.
    EMAIL_TIMEOUT = 15
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
DEFAULT_FROM_EMAIL = env_str("RADREVIEW_EMAIL_FROM", "radreview <noreply@localhost>")

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = DATA_DIR / "media"
MEDIA_URL = None  # never served directly: DICOM bytes go out through authorised views only
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = env_bool("RADREVIEW_STATIC_FROM_SOURCE", DEBUG)
WHITENOISE_MIMETYPES = {".wasm": "application/wasm", ".mjs": "text/javascript"}


def _immutable_static(path: str, url: str) -> bool:
    # Vite writes content-hashed names into dist/assets/; they can be cached forever.
    return "/dist/assets/" in url


WHITENOISE_IMMUTABLE_FILE_TEST = _immutable_static

# Uploads are hostile: keep them on disk, bound request sizes.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
DATA_UPLOAD_MAX_NUMBER_FILES = env_int("RADREVIEW_MAX_UPLOAD_FILES", 2000, minimum=1)
FILE_UPLOAD_TEMP_DIR = None
RADREVIEW_MAX_UPLOAD_BYTES = env_int("RADREVIEW_MAX_UPLOAD_BYTES", 1024**3, minimum=1024)
RADREVIEW_MAX_FILE_BYTES = env_int("RADREVIEW_MAX_FILE_BYTES", 512 * 1024**2, minimum=1024)
# Archive members and expanded bytes are counted over the whole upload (every zip of it).
RADREVIEW_MAX_ARCHIVE_MEMBERS = env_int("RADREVIEW_MAX_ARCHIVE_MEMBERS", 10_000, minimum=1)
DICOMWEB_STOW_MAX_BYTES = env_int("RADREVIEW_STOW_MAX_BYTES", 4 * 1024**3, minimum=1024)
# Origins (scheme://host[:port]) whose pages may call DICOMweb, e.g. an OHIF served elsewhere.
DICOMWEB_CORS_ALLOWED_ORIGINS = env_list("RADREVIEW_DICOMWEB_CORS_ORIGINS", [])
for _origin in DICOMWEB_CORS_ALLOWED_ORIGINS:
    if not re.fullmatch(r"https?://[^/\s*]+", _origin):
        raise ImproperlyConfigured(
            f"RADREVIEW_DICOMWEB_CORS_ORIGINS: {_origin!r} is not an origin "
            "(scheme://host[:port], no path, no wildcard)."
        )
RADREVIEW_MAX_ARCHIVE_BYTES = env_int("RADREVIEW_MAX_ARCHIVE_BYTES", 4 * 1024**3, minimum=1024)

# What a request body may weigh, judged by reviewapp.core.body_limits in front of Django from
# the headers (Content-Length) or, for a chunked body, as it arrives: a body over its limit is
# refused with 413 before it is read, so nobody can fill the disk with bodies Django would
# spool and then refuse. Anonymous requests (the login form, the token exchange) may send a
# little; a request with valid credentials may send up to its route's limit: the routes below,
# else RADREVIEW_MAX_BODY_BYTES. The first matching pattern (on the path) wins.
RADREVIEW_ANONYMOUS_BODY_BYTES = env_int("RADREVIEW_ANONYMOUS_BODY_BYTES", 64 * 1024, minimum=1024)
RADREVIEW_MAX_BODY_BYTES = env_int("RADREVIEW_MAX_BODY_BYTES", DATA_UPLOAD_MAX_MEMORY_SIZE)
RADREVIEW_BODY_LIMITS: list[tuple[str, int]] = [
    (r"^/imaging/upload/$", RADREVIEW_MAX_UPLOAD_BYTES),
    (r"^/api/v1/import-batches$", RADREVIEW_MAX_UPLOAD_BYTES),
    (r"^/reports/upload/$", RADREVIEW_MAX_UPLOAD_BYTES),
    (r"^/api/v1/reports/import$", RADREVIEW_MAX_UPLOAD_BYTES),
    (r"^/dicomweb/studies(/[0-9.]{1,64})?$", DICOMWEB_STOW_MAX_BYTES),  # STOW-RS
]

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
        "reviewapp.accounts.authentication.TokenAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "reviewapp.core.api.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "reviewapp.core.pagination.Pagination",
    "DEFAULT_PARSER_CLASSES": [
        "reviewapp.core.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "PAGE_SIZE": 100,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "radreview API",
    "DESCRIPTION": "Blinded expert evaluation of AI-written radiology reports.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Redis carries the Celery broker and the Channels layer. Without REDIS_URL (the embedded demo)
# Celery uses a folder-backed broker that still lets a separate worker process consume, and
# Channels keeps events inside the web process.
REDIS_URL = env_optional("REDIS_URL")
BROKER_DIR = DATA_DIR / "broker"
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": env_str("RADREVIEW_CHANNEL_PREFIX", "rr")},
        }
    }
else:
    CELERY_BROKER_URL = "filesystem://"
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# The cache holds computed results keyed by what they depend on (the analysis page per study
# version). On Redis every web process and worker shares it, so a study analysed once is served
# from the cache by whichever process gets the next request; without Redis each process keeps
# its own. Keys are prefixed so several installations can share one Redis database.
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env_str("RADREVIEW_CACHE_PREFIX", "rr"),
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# A study analysed with more ratings than this (at 2,000 resamples; fewer resamples allow
# proportionally more) gets its headline in the request and its agreement CIs and plots from a
# worker task, with progress on the page; smaller studies get everything in the request.
# 0: always in a task. Without Redis (the embedded demo) a worker's cache is not the web
# process's, so everything is computed in the request.
ANALYSIS_INLINE_RATINGS: int | None = (
    env_int("RADREVIEW_ANALYSIS_INLINE_RATINGS", 5000, minimum=0) if REDIS_URL else None
)

# The longest GPU run must finish before Redis hands an unacked task to another worker.
CELERY_TASK_HARD_TIME_LIMIT = env_int("RADREVIEW_TASK_TIME_LIMIT", 1800, minimum=10)
CELERY_VISIBILITY_TIMEOUT = CELERY_TASK_HARD_TIME_LIMIT * 2 + 600
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object]
if REDIS_URL:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT}
else:
    for _folder in ("queue", "processed", "control"):
        (BROKER_DIR / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(BROKER_DIR / "queue"),
        "data_folder_out": str(BROKER_DIR / "queue"),
        "processed_folder": str(BROKER_DIR / "processed"),
        "control_folder": str(BROKER_DIR / "control"),
        "store_processed": False,
    }
# Model-based metrics, each from a local directory (never downloaded at run time); empty: the
# metric is not run. BERTScore: a BERT-class encoder; F1CheXbert: a BERT config and tokenizer
# with the CheXbert checkpoint; RadGraph F1: a token-classification model with BIO entity tags.
METRICS_BERTSCORE_DIR = env_str("RADREVIEW_BERTSCORE_DIR", "")
METRICS_CHEXBERT_DIR = env_str("RADREVIEW_CHEXBERT_DIR", "")
METRICS_RADGRAPH_DIR = env_str("RADREVIEW_RADGRAPH_DIR", "")
# Where the CheXbert and RadGraph models run ("cpu", "cuda", "auto": CUDA when there is one);
# a GPU needs the metric jobs on the queue a GPU worker consumes (RADREVIEW_METRICS_QUEUE=gpu).
METRICS_DEVICE = env_str("RADREVIEW_METRICS_DEVICE", "cpu")
METRICS_QUEUE = env_str("RADREVIEW_METRICS_QUEUE", "default")
if METRICS_QUEUE not in ("default", "gpu"):
    raise ImproperlyConfigured(f"RADREVIEW_METRICS_QUEUE={METRICS_QUEUE!r}: use default or gpu.")
# The GREEN-style judge: "transformers" (RADREVIEW_JUDGE_LOCATION is a causal LM's directory)
# or "openai" (RADREVIEW_JUDGE_LOCATION is the server's URL, RADREVIEW_JUDGE_MODEL its model
# name; RADREVIEW_JUDGE_API_KEY is read by the worker and never stored); empty: no judge.
METRICS_JUDGE_BACKEND = env_str("RADREVIEW_JUDGE_BACKEND", "")
if METRICS_JUDGE_BACKEND not in ("", "transformers", "openai"):
    raise ImproperlyConfigured(
        f"RADREVIEW_JUDGE_BACKEND={METRICS_JUDGE_BACKEND!r}: use transformers or openai."
    )
METRICS_JUDGE_LOCATION = env_str("RADREVIEW_JUDGE_LOCATION", "")
if METRICS_JUDGE_BACKEND and not METRICS_JUDGE_LOCATION:
    raise ImproperlyConfigured("RADREVIEW_JUDGE_BACKEND needs RADREVIEW_JUDGE_LOCATION.")
METRICS_JUDGE_MODEL = env_str("RADREVIEW_JUDGE_MODEL", "")
METRICS_JUDGE_MAX_NEW_TOKENS = env_int("RADREVIEW_JUDGE_MAX_NEW_TOKENS", 1024, minimum=64)

CELERY_TASK_QUEUES: dict[str, dict[str, str]] = {"default": {}, "gpu": {}}
CELERY_TASK_DEFAULT_QUEUE = "default"
# Every task not named here goes to "default". A generation run is sent to its model's queue
# explicitly (ModelConfig.queue: "gpu" for local models); this route covers a send without one.
CELERY_TASK_ROUTES: dict[str, dict[str, str]] = {
    "reviewapp.generation.tasks.generation_run_execute_task": {"queue": "gpu"},
}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ALWAYS_EAGER = env_bool("RADREVIEW_TASKS_EAGER", False)
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Stops Celery's Django fixup from closing the database connections around every task;
# reviewapp.core.tasks checks and recycles them instead (the number is only a backstop).
CELERY_DB_REUSE_MAX = 1000
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BEAT_SCHEDULE: dict[str, dict] = {
    # The run table is the source of truth: re-queue generation runs whose worker died.
    "generation-reap": {
        "task": "reviewapp.generation.tasks.generation_runs_reap_task",
        "schedule": env_int("RADREVIEW_GENERATION_REAP_SECONDS", 60, minimum=5),
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("RADREVIEW_LOG_LEVEL", "INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        # WebAssembly codecs (JPEG 2000, JPEG-LS) need wasm-unsafe-eval; no inline scripts.
        "script-src": ["'self'", "'wasm-unsafe-eval'"],
        "worker-src": ["'self'", "blob:"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# De-identification: the keyed hash that remaps UIDs must stay stable for the life of the
# archive (re-imports must land on the same study), so it is its own secret, not SECRET_KEY.
RADREVIEW_DEID_SECRET = env_str(
    "RADREVIEW_DEID_SECRET", SECRET_KEY if DEBUG or SECRET_KEY == _INSECURE_DEV_KEY else None
)
RADREVIEW_DEID_ENABLED = env_bool("RADREVIEW_DEID_ENABLED", True)

# DICOM receiver (C-STORE SCP, `manage.py dicom_receiver`, started by `runner serve`): PACS and
# modalities push studies here. Loopback unless told otherwise: anything that can reach the port
# and passes the calling-AE allow-list can add images to the archive.
RADREVIEW_DICOM_PORT = env_int("RADREVIEW_DICOM_PORT", 11112, minimum=0)  # 0: no receiver
RADREVIEW_DICOM_HOST = env_str("RADREVIEW_DICOM_HOST", "127.0.0.1")
RADREVIEW_DICOM_AE_TITLE = env_str("RADREVIEW_DICOM_AE_TITLE", "RADREVIEW")
# Calling AE titles allowed to associate (comma-separated); empty: any.
RADREVIEW_DICOM_ALLOWED_CALLING_AES = env_list("RADREVIEW_DICOM_ALLOWED_CALLING_AES", [])
for _ae_title in [RADREVIEW_DICOM_AE_TITLE, *RADREVIEW_DICOM_ALLOWED_CALLING_AES]:
    # PS3.5 AE: at most 16 characters, no backslash or control characters, not all spaces.
    if not (0 < len(_ae_title.strip()) <= 16 and _ae_title.isprintable() and "\\" not in _ae_title):
        raise ImproperlyConfigured(
            f"DICOM AE title {_ae_title!r} is not valid: use 1 to 16 printable characters, "
            "no backslash (RADREVIEW_DICOM_AE_TITLE, RADREVIEW_DICOM_ALLOWED_CALLING_AES)."
        )
