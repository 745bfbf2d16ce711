"""Django settings for the deepfake forensics service.

Every setting an operator may change is read from the environment here, in this
one module, through the small typed helpers below. The defaults make the service
run on one laptop with nothing else installed: SQLite, django-q2's ORM broker and
the model files shipped in the repository. `DATABASE_URL` and `REDIS_URL` switch
it to PostgreSQL and Redis for a cluster. The README documents every variable.
"""

import os
import secrets
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name}={value!r} is not a boolean (use 1/0, true/false, yes/no)")


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{name}={value!r} is not an integer") from None


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env_str(name, default).split(",") if item.strip()]


def env_secret(name: str) -> str:
    """Read a secret from `NAME`, or from the file named by `NAME_FILE` (Docker secrets)."""
    path = os.environ.get(f"{name}_FILE")
    if path:
        return Path(path).read_text().strip()
    return os.environ.get(name, "")


def local_secret_key(path: Path) -> str:
    """Generate a secret key once for the embedded setup and keep it in a private file.

    Sessions survive restarts because the key is stable; it is never committed
    (the file is git-ignored) and never the same on two machines.
    """
    if path.exists():
        return path.read_text().strip()
    key = secrets.token_urlsafe(50)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_secret("SECRET_KEY") or local_secret_key(BASE_DIR / ".secret_key")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "detector",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves collected static files without a separate web server, also with DEBUG off.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "detector.middleware.UploadSizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "detector.middleware.SecurityHeadersMiddleware",
]

ROOT_URLCONF = "deepfake_site.urls"
WSGI_APPLICATION = "deepfake_site.wsgi.application"

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
            ],
        },
    },
]

# SQLite unless DATABASE_URL names another database (PostgreSQL for a cluster). Connections
# are kept for a minute (checked before reuse) instead of opened per request: with both cores
# analysing, a new PostgreSQL connection per request put the status endpoint's p50 at 52-99 ms
# against 37-75 ms kept, and the history page's p95 at 236-439 against 186-324 (bench.load_test).
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DEEPFAKE_DB_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The web server and the worker write to one file: wait for the lock instead of
    # failing at once, and let readers run beside a writer (WAL).
    DATABASES["default"]["OPTIONS"] = {
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
    }
    # A file, not memory, so that a worker started by a test sees the test database.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "test_db.sqlite3")}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = ["detector.signin.ThrottledModelBackend"]
# Sign-in throttling: this many failures within the window lock the account, or the address.
DEEPFAKE_SIGNIN_WINDOW_S = env_int("DEEPFAKE_SIGNIN_WINDOW_S", 900)
DEEPFAKE_SIGNIN_FAILURES_PER_ACCOUNT = env_int("DEEPFAKE_SIGNIN_FAILURES_PER_ACCOUNT", 5)
DEEPFAKE_SIGNIN_FAILURES_PER_ADDRESS = env_int("DEEPFAKE_SIGNIN_FAILURES_PER_ADDRESS", 20)
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("DEEPFAKE_STATIC_ROOT", str(BASE_DIR / "staticfiles")))
# Also serve files straight from static/ (found at start-up), so a changed file needs no
# collectstatic during development; collectstatic still builds STATIC_ROOT for containers.
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Uploads and derived images live here. They are never served as static files:
# a view checks ownership before streaming each one (there is no MEDIA_URL route).
MEDIA_ROOT = Path(env_str("DEEPFAKE_MEDIA_ROOT", str(BASE_DIR / "media")))

# Analyses a user may start per period, by any way in (page, API, re-runs, admin re-runs).
# DEEPFAKE_API_UPLOAD_RATE was its name when only the API counted.
DEEPFAKE_UPLOAD_RATE = env_str("DEEPFAKE_UPLOAD_RATE", env_str("DEEPFAKE_API_UPLOAD_RATE", "120/hour"))

# Retention: `manage.py purge` deletes uploads older than this many days (0: keep them).
DEEPFAKE_RETENTION_DAYS = env_int("DEEPFAKE_RETENTION_DAYS", 0)

# Largest accepted upload. Bigger requests are refused before the body is stored.
DEEPFAKE_MAX_UPLOAD_MB = env_int("DEEPFAKE_MAX_UPLOAD_MB", 500)
DATA_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
# Uploads larger than this go to a temporary file instead of memory.
FILE_UPLOAD_MAX_MEMORY_SIZE = 10 * 1024 * 1024
FILE_UPLOAD_PERMISSIONS = 0o640
FILE_UPLOAD_HANDLERS = [
    "detector.middleware.SizeLimitUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]

# The detection engine, loaded only in the worker process.
DEEPFAKE_MODEL_DIR = Path(env_str("DEEPFAKE_MODEL_DIR", str(BASE_DIR / "ml" / "weights")))
DEEPFAKE_DEVICE = env_str("DEEPFAKE_DEVICE", "auto")
DEEPFAKE_TORCH_THREADS = env_int("DEEPFAKE_TORCH_THREADS", 0)  # 0: one per core
# Workers run at this niceness, so that on cores shared with the web server, pages come first.
DEEPFAKE_WORKER_NICENESS = env_int("DEEPFAKE_WORKER_NICENESS", 10)
DEEPFAKE_TASK_TIMEOUT = env_int("DEEPFAKE_TASK_TIMEOUT", 900)
# Facial expression per face (an optional stage: evidence beside the verdict, never in it).
DEEPFAKE_EMOTIONS = env_bool("DEEPFAKE_EMOTIONS", True)
# Root certificates (a PEM file) whose C2PA signatures count as trusted, e.g. the C2PA trust
# list. Unset: a valid signature reads "signed by an authority this installation does not know".
DEEPFAKE_C2PA_TRUST_ANCHORS = env_str("DEEPFAKE_C2PA_TRUST_ANCHORS", "")
# Perceptual-hash distance (bits of 64) under which an earlier upload is listed as a near copy.
DEEPFAKE_NEAR_COPY_BITS = env_int("DEEPFAKE_NEAR_COPY_BITS", 10)
# The live camera's scoring service (`python -m ml.live`); `manage.py serve` starts it on
# this address unless told --no-live.
DEEPFAKE_LIVE_URL = env_str("DEEPFAKE_LIVE_URL", "http://127.0.0.1:8765")

# The job queue. ORM broker (the default database) unless REDIS_URL is set.
REDIS_URL = env_str("REDIS_URL")
# pytest-xdist runs the tests in several processes, each with a test database of its own
# (pytest-django suffixes its name); each needs a queue of its own too, or on Redis one
# process's worker would take another's tasks. Servers a test starts inherit the variable.
_TEST_PROCESS = os.environ.get("PYTEST_XDIST_WORKER", "")
Q_CLUSTER = {
    "name": env_str("DEEPFAKE_QUEUE_NAME", "deepfake") + (f"-{_TEST_PROCESS}" if _TEST_PROCESS else ""),
    # Two torch jobs on two cores fight for them: one worker per machine by default.
    "workers": env_int("DEEPFAKE_WORKERS", 1),
    "timeout": DEEPFAKE_TASK_TIMEOUT,
    # Must exceed the timeout, or a long task would be handed to a second worker. A task whose
    # worker died is handed out again this many seconds after it was taken (ORM broker).
    "retry": env_int("DEEPFAKE_TASK_RETRY", DEEPFAKE_TASK_TIMEOUT + 60),
    # A worker killed mid-task gets its task re-delivered once, then the task fails.
    "max_attempts": 2,
    "ack_failures": True,
    "save_limit": 1000,
    "recycle": 50,
    "catch_up": False,
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
else:
    Q_CLUSTER["orm"] = "default"
    Q_CLUSTER["poll"] = 0.5

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_CLASSES": ["rest_framework.throttling.ScopedRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "analyses": env_str("DEEPFAKE_API_RATE", "1200/hour"),
        # The live page sends ~3 frames a second.
        "live": env_str("DEEPFAKE_LIVE_RATE", "20000/hour"),
    },
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Deepfake Forensics API",
    "DESCRIPTION": "Upload face videos and photos, poll the analysis, read the verdict and its evidence.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # A review's decision and a case's latest decision are one set of choices.
    "ENUM_NAME_OVERRIDES": {"DecisionEnum": "detector.models.Decision"},
    # The docs page's JavaScript and CSS come from the installed sidecar: nothing is fetched.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}
# Webhook callbacks to private or loopback addresses are refused unless this is set.
DEEPFAKE_WEBHOOK_ALLOW_PRIVATE = env_bool("DEEPFAKE_WEBHOOK_ALLOW_PRIVATE", False)

# Served over HTTPS behind a proxy: cookies only over TLS, HSTS (see README).
DEEPFAKE_HTTPS = env_bool("DEEPFAKE_HTTPS", False)
SESSION_COOKIE_SECURE = DEEPFAKE_HTTPS
CSRF_COOKIE_SECURE = DEEPFAKE_HTTPS
SECURE_SSL_REDIRECT = DEEPFAKE_HTTPS
SECURE_HSTS_SECONDS = env_int("DEEPFAKE_HSTS_SECONDS", 31536000 if DEEPFAKE_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = DEEPFAKE_HTTPS
# preload asks browsers' vendors to hard-code HTTPS for the domain: only when asked for.
SECURE_HSTS_PRELOAD = DEEPFAKE_HTTPS and env_bool("DEEPFAKE_HSTS_PRELOAD", False)
# Without preload, `check --deploy` would warn that the site cannot join the preload list.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
# The container's health check speaks plain HTTP to the server itself.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
DEEPFAKE_BEHIND_PROXY = env_bool("DEEPFAKE_BEHIND_PROXY", False)
if DEEPFAKE_BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy of every response (detector.middleware.SecurityHeadersMiddleware):
# scripts only from our static files (no inline script anywhere); inline style attributes
# are allowed (bar widths, face boxes), which cannot run code.
DEEPFAKE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; media-src 'self' blob: mediastream:; connect-src 'self'; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
# Password reset mails a link: offered only when the server can send mail.
EMAIL_HOST = env_str("EMAIL_HOST", "")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_secret("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "deepfake-forensics@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "{asctime} {levelname} {name}: {message}", "style": "{"}},
    "filters": {
        "scheduled_at_debug": {
            "()": "detector.logs.ScheduledTasksAtDebug",
            "level": env_str("DEEPFAKE_LOG_LEVEL", "INFO"),
        }
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": ["scheduled_at_debug"]}
    },
    "root": {"handlers": ["console"], "level": env_str("DEEPFAKE_LOG_LEVEL", "INFO")},
}
