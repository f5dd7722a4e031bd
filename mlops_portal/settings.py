"""Settings for MLOps Portal. Everything is switched by environment variables.

Embedded default (no variables set): SQLite in ``var/`` and Celery on kombu's
``filesystem://`` transport in ``var/broker``. Production: ``DJANGO_ENV=production``,
``DATABASE_URL=postgres://…``, ``CELERY_BROKER_URL=redis://…``.
"""

from datetime import timedelta
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured
from kombu import Queue

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(environ.Env().str("MLOPS_VAR_DIR", default=str(BASE_DIR / "var")))

env = environ.Env()
DJANGO_ENV = env.str("DJANGO_ENV", default="development")
PRODUCTION = DJANGO_ENV == "production"

SECRET_KEY = env.str("SECRET_KEY", default="dev-insecure-change-me-" + "x" * 40)
DEBUG = env.bool("DEBUG", default=not PRODUCTION)
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "django_celery_beat",
    "axes",
    "django_prometheus",
    "mozilla_django_oidc",
    "rules.apps.AutodiscoverRulesConfig",
    "registry",
    "monitoring",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "mlops_portal.middleware.RequestIdMiddleware",
    "mlops_portal.middleware.RefuseNulMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "mlops_portal.middleware.ContentSecurityPolicyMiddleware",
    "axes.middleware.AxesMiddleware",  # answers 429 to a locked-out account or address
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "mlops_portal.urls"
WSGI_APPLICATION = "mlops_portal.wsgi.application"

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
                "mlops_portal.context_processors.layout",
                "mlops_portal.context_processors.navigation",
                "monitoring.oversight.context_processors.oversight_nav",
            ],
        },
    },
]

VAR_DIR.mkdir(parents=True, exist_ok=True)
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE transactions serialise writers up front, so the audit chain
    # never forks and no writer fails half-way with "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {"transaction_mode": "IMMEDIATE", "timeout": 20, "init_command": "PRAGMA journal_mode=WAL;"}
    )
if DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql"):
    # PostgreSQL's JIT compiles any plan whose *estimated* cost is high: the fleet overview and
    # scorecard queries (a few rows) spent 3-6 s compiling per request (bench/pages.py). Web pages
    # never gain from it; PG_JIT=on restores the server default.
    if not env.bool("PG_JIT", default=False):
        DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")
DATABASES["default"]["ATOMIC_REQUESTS"] = True
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=0)
DATABASES["default"].setdefault("TEST", {})
if env.str("TEST_DATABASE_NAME", default=""):
    DATABASES["default"]["TEST"]["NAME"] = env.str("TEST_DATABASE_NAME")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
FORMS_URLFIELD_ASSUME_HTTPS = True

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("STATIC_ROOT", default=str(VAR_DIR / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns about a missing root
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
WHITENOISE_USE_FINDERS = not PRODUCTION
# Outside production the files are looked up when asked for (whitenoise's development mode), not
# listed when the middleware starts: each test client starts the middleware again, and listing
# the finders' 216 files cost 40-70 ms each time (a tenth of two registry test files' profile).
WHITENOISE_AUTOREFRESH = not PRODUCTION

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

# Request bodies: ingestion accepts large batches; everything else is small.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=64 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = DATA_UPLOAD_MAX_MEMORY_SIZE
API_MAX_BODY_BYTES = env.int("API_MAX_BODY_BYTES", default=1024 * 1024)
INGEST_MAX_BODY_BYTES = env.int("INGEST_MAX_BODY_BYTES", default=64 * 1024 * 1024)
# Prediction timestamps accepted from now - INGEST_MAX_AGE_DAYS to now + INGEST_MAX_FUTURE seconds
INGEST_MAX_FUTURE = env.int("INGEST_MAX_FUTURE", default=86400)
INGEST_MAX_AGE_DAYS = env.int("INGEST_MAX_AGE_DAYS", default=400)
# Django's cache: in each process's memory by default. CACHE_URL (redis://host:6379/1 in
# production) shares it between processes; sessions are then read from it (cached_db: written
# through to the database, so a restart of Redis logs nobody out).
if env.str("CACHE_URL", default=""):
    CACHES = {"default": env.cache_url("CACHE_URL")}
    if CACHES["default"]["BACKEND"] == "django.core.cache.backends.redis.RedisCache":
        # django-redis keeps one client per server (Django's backend builds one per cache call).
        CACHES["default"] = env.cache_url("CACHE_URL", backend="django_redis.cache.RedisCache")
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
# Rendered inventory HTML and API model details are cached under revisions that every
# committed change bumps (registry/cache.py); 0 turns that cache off.
INVENTORY_CACHE_SECONDS = env.int("INVENTORY_CACHE_SECONDS", default=600)

# Audit chain checkpoints (registry/services/audit/checkpoint.py): the head (seq, hash, time)
# appended to a file and/or POSTed to a URL outside the database, periodically (beat) and by
# `manage.py audit_checkpoint`; `verify_audit` compares the chain with the file's last line.
# Keep the file (or the URL's receiver) where the database's users cannot rewrite it.
AUDIT_CHECKPOINT_FILE = env.str("AUDIT_CHECKPOINT_FILE", default=str(VAR_DIR / "audit" / "checkpoints.jsonl"))
AUDIT_CHECKPOINT_URL = env.str("AUDIT_CHECKPOINT_URL", default="")

EMAIL_BACKEND = env.str("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="mlops-portal@localhost")
# SMTP, when EMAIL_BACKEND=django.core.mail.backends.smtp.EmailBackend
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="http://127.0.0.1:8000")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "registry.api.auth.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": ["mlops_portal.api.filtering.StrictFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "mlops_portal.api.pagination.StrictLimitOffsetPagination",
    "PAGE_SIZE": 50,
    # drf-spectacular's, describing operations by their views' own docstrings, never a base's.
    "DEFAULT_SCHEMA_CLASS": "mlops_portal.api.schema.AutoSchema",
    "EXCEPTION_HANDLER": "mlops_portal.api.errors.exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    # Every API body is JSON read by the shared parser: 1 MiB limit, nesting and NUL checks.
    "DEFAULT_PARSER_CLASSES": ["mlops_portal.api.parsers.LimitedJSONParser"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "MLOps Portal API",
    "DESCRIPTION": "Model inventory, promotion approvals, audit log and monitoring.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # The error answers of every operation, string enums, record batches (mlops_portal/api/schema.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "mlops_portal.api.schema.postprocess_schema",
    ],
    # One schema name per choice set, so `check --deploy` has nothing to report.
    "ENUM_NAME_OVERRIDES": {
        "StageEnum": "registry.choices.Stage",
        "PromotionStatusEnum": "registry.choices.PromotionStatus",
        "RiskTierEnum": "registry.choices.RiskTier",
        "TaskTypeEnum": "registry.choices.TaskType",
        "ModelKindEnum": "registry.choices.ModelKind",
        "IncidentSeverityEnum": "monitoring.choices.IncidentSeverity",
        "IncidentStatusEnum": "monitoring.choices.IncidentStatus",
        "FindingSeverityEnum": "monitoring.choices.FindingSeverity",
        "FindingStatusEnum": "monitoring.choices.FindingStatus",
        "PeriodicReviewStatusEnum": "monitoring.choices.ReviewStatus",
    },
}

# --- access: sign-in, lockout, single sign-on, tokens, step-up, operations endpoints -----------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # refuses a locked-out account or address first
    "rules.permissions.ObjectPermissionBackend",
    "registry.auth.RolesModelBackend",  # passwords (only the break-glass account when LOCAL_LOGIN=False)
    "registry.oidc.OidcBackend",  # OpenID Connect; inert unless OIDC_RP_CLIENT_ID is set
]
# Reverse proxies whose X-Forwarded-For is believed (addresses or networks); none by default,
# so the client address is the connection's own (mlops_portal/net.py).
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
# Lockout (django-axes, mlops_portal/lockout.py): LOGIN_FAILURE_LIMIT failures for one account
# from one address, each less than LOGIN_LOCKOUT_MINUTES after the previous one, lock that account
# at that address for LOGIN_LOCKOUT_MINUTES; the other accounts at the address (a whole office
# behind one NAT, the admin included) still sign in. Against password spraying (one address, a
# guess per account) and guessing one account from many addresses, LOGIN_WIDE_FAILURE_LIMIT
# failures from one address over all accounts, or for one account from all addresses, lock that
# address or that account. An admin unlocks in the admin ("Access attempts").
AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_WIDE_FAILURE_LIMIT = env.int("LOGIN_WIDE_FAILURE_LIMIT", default=30)
AXES_COOLOFF_TIME = timedelta(minutes=env.float("LOGIN_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]  # the pair; the wide limits: AXES_HANDLER
AXES_HANDLER = "mlops_portal.lockout.LockoutHandler"
AXES_RESET_ON_SUCCESS = True
AXES_ENABLE_ADMIN = False  # registry/admin.py registers an audited unlock instead
AXES_CLIENT_IP_CALLABLE = "mlops_portal.net.client_ip"
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_VERBOSE = False
# Passwords: LOCAL_LOGIN=False keeps only BREAK_GLASS_USERNAME's password working.
LOCAL_LOGIN = env.bool("LOCAL_LOGIN", default=True)
BREAK_GLASS_USERNAME = env.str("BREAK_GLASS_USERNAME", default="")
# OpenID Connect (mozilla-django-oidc): authorization code flow with PKCE, state and nonce,
# ID token signed with RS256 and checked against the provider's JWKS (registry/oidc.py).
# The client, then the provider's discovery document or its endpoints and issuer (registry/oidc.py
# reads those from discovery unless set): each from the environment variable of the same name,
# empty (single sign-on off) unless set.
OIDC_RP_CLIENT_ID = env.str("OIDC_RP_CLIENT_ID", default="")
OIDC_RP_CLIENT_SECRET = env.str("OIDC_RP_CLIENT_SECRET", default="")
OIDC_OP_DISCOVERY_URL = env.str("OIDC_OP_DISCOVERY_URL", default="")
OIDC_OP_AUTHORIZATION_ENDPOINT = env.str("OIDC_OP_AUTHORIZATION_ENDPOINT", default="")
OIDC_OP_TOKEN_ENDPOINT = env.str("OIDC_OP_TOKEN_ENDPOINT", default="")
OIDC_OP_USER_ENDPOINT = env.str("OIDC_OP_USER_ENDPOINT", default="")
OIDC_OP_JWKS_ENDPOINT = env.str("OIDC_OP_JWKS_ENDPOINT", default="")
OIDC_OP_ISSUER = env.str("OIDC_OP_ISSUER", default="")
OIDC_RP_SCOPES = env.str("OIDC_RP_SCOPES", default="openid email profile")
OIDC_GROUPS_CLAIM = env.str("OIDC_GROUPS_CLAIM", default="groups")
OIDC_USERNAME_CLAIM = env.str("OIDC_USERNAME_CLAIM", default="preferred_username")
OIDC_PROVIDER_NAME = env.str("OIDC_PROVIDER_NAME", default="single sign-on")
OIDC_RP_SIGN_ALGO = "RS256"
OIDC_USE_PKCE = True
OIDC_USE_NONCE = True
OIDC_TIMEOUT = env.int("OIDC_TIMEOUT", default=10)
OIDC_VERIFY_SSL = env.bool("OIDC_VERIFY_SSL", default=True)
OIDC_AUTHENTICATION_CALLBACK_URL = "oidc_authentication_callback"
LOGIN_REDIRECT_URL_FAILURE = "/login/?sso=failed"
# API tokens expire at most this many days after creation (a token asked without expiry gets it).
TOKEN_MAX_LIFETIME_DAYS = env.int("TOKEN_MAX_LIFETIME_DAYS", default=365)
# Sensitive actions need a sign-in at most this many seconds old (registry/stepup.py).
STEP_UP_MAX_AGE = env.int("STEP_UP_MAX_AGE", default=600)
# /metrics: Prometheus scrapers from these networks, or with METRICS_TOKEN as a Bearer token.
METRICS_ALLOWED_NETWORKS = env.list("METRICS_ALLOWED_NETWORKS", default=["127.0.0.1/32", "::1/128"])
METRICS_TOKEN = env.str("METRICS_TOKEN", default="")
# /healthz calls the worker dead when its heartbeat (a beat task) is older than this.
WORKER_HEARTBEAT_MAX_AGE = env.int("WORKER_HEARTBEAT_MAX_AGE", default=180)

# Celery: the embedded default uses kombu's filesystem transport, so nothing but
# Python is needed; production points CELERY_BROKER_URL at Redis.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="filesystem://")
CELERY_BROKER_DIR = Path(env.str("CELERY_BROKER_DIR", default=str(VAR_DIR / "broker")))
if CELERY_BROKER_URL.startswith("filesystem://"):
    for sub in ("queue", "processed", "control"):
        (CELERY_BROKER_DIR / sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_BROKER_DIR / "queue"),
        "data_folder_out": str(CELERY_BROKER_DIR / "queue"),
        "processed_folder": str(CELERY_BROKER_DIR / "processed"),
        "control_folder": str(CELERY_BROKER_DIR / "control"),
        "store_processed": False,
    }
else:
    # Seconds before an unacknowledged task (worker died mid-task) is redelivered. Nothing
    # depends on it: a window whose worker died is queued again by the beat sweep when its
    # lease expires (monitoring.services.window_marks), a pending profile by its own sweep.
    # ``queue_order_strategy: priority``: a worker's BRPOP lists the queues in CELERY_TASK_QUEUES'
    # order, so a free process always takes an alert-path task before a queued window.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT", default=3600),
        "queue_order_strategy": "priority",
    }
# Two queues; a worker started without -Q consumes both, "alerts" first (Redis, above; the
# filesystem transport takes them in turn). "alerts" holds the short tasks between a batch and
# its alert (the dirty-window sweep, the health evaluation), so they never wait behind a queue of
# window recomputations (docs/performance.md, "Freshness under load"); everything else is "celery".
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_QUEUES = (Queue("alerts", routing_key="alerts"), Queue("celery", routing_key="celery"))
CELERY_TASK_ROUTES = {
    name: {"queue": "alerts"}
    for name in ("monitoring.tasks.monitoring_sweep_dirty_windows", "monitoring.tasks.health_evaluate")
}
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 600
CELERY_TASK_SOFT_TIME_LIMIT = 540
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_TIMEZONE = "UTC"
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)

# --- Outbound requests (mlops_portal/outbound.py, docs/security.md) ---------------------------
# Webhooks, retrain triggers, MLflow servers and the audit checkpoint sink may only reach public
# addresses; host names and CIDRs listed here are let through anyway (e.g. "mlflow.internal,10.2.0.0/16").
OUTBOUND_ALLOWED_HOSTS = env.list("OUTBOUND_ALLOWED_HOSTS", default=[])
# --- end outbound requests -----------------------------------------------------------------------

# --- Post-launch oversight (monitoring/oversight, README "Incidents, plans, reviews") -------------
# Art. 73 deadlines are counted on the wall clock of this IANA zone (DST- and month-end-correct).
DEFAULT_MODEL_TIME_ZONE = env.str("DEFAULT_MODEL_TIME_ZONE", default="UTC")
# A non-serious malfunction has no legal deadline; set days for an internal one (unset: none).
INCIDENT_MALFUNCTION_DEADLINE_DAYS = env.int("INCIDENT_MALFUNCTION_DEADLINE_DAYS", default=None)
INCIDENT_PROVIDER_NAME = env.str("INCIDENT_PROVIDER_NAME", default="")  # reports; default: the model's team
INCIDENT_DEPLOYER_NAME = env.str("INCIDENT_DEPLOYER_NAME", default="")
# GDPR Art. 30(1)(a): who the records of processing name (name and contact details)
DATA_CONTROLLER = env.str("DATA_CONTROLLER", default="")
DATA_PROTECTION_OFFICER = env.str("DATA_PROTECTION_OFFICER", default="")
REVIEW_CADENCE_DAYS = {
    "high": env.int("REVIEW_CADENCE_HIGH_DAYS", default=90),
    "medium": env.int("REVIEW_CADENCE_MEDIUM_DAYS", default=180),
    "low": env.int("REVIEW_CADENCE_LOW_DAYS", default=365),
}
REVIEW_OPEN_DAYS_BEFORE = env.int("REVIEW_OPEN_DAYS_BEFORE", default=14)  # a scheduled review opens this early
REVIEW_TRIGGER_DUE_DAYS = env.int("REVIEW_TRIGGER_DUE_DAYS", default=14)  # a triggered review is due within
# --- end post-launch oversight --------------------------------------------------------------------
# --- Fairness (monitoring/fairness.py, issue "Bias and fairness evidence") ------------------------
# Groups with fewer rows are reported "too small", never with their rates, and take no part in the
# parity figures; bootstrap replicates behind the 95 % intervals (seeded).
FAIRNESS_MIN_GROUP_SIZE = env.int("FAIRNESS_MIN_GROUP_SIZE", default=30)
FAIRNESS_BOOTSTRAP_SAMPLES = env.int("FAIRNESS_BOOTSTRAP_SAMPLES", default=1000)
# --- end fairness --------------------------------------------------------------------------------

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}

if PRODUCTION:
    SECRET_KEY = env.str("SECRET_KEY")  # required: never run production on the built-in development key
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SECURE_CONTENT_TYPE_NOSNIFF = True

# --- Retention and erasure (monitoring/services/retention.py, erasure.py, docs/scale.md) -------
# Subject ids sent with predictions and labels are stored only as HMAC-SHA256 under this key.
# A development default exists only when DEBUG is on outside production; without a key,
# batches carrying subject ids and erasure requests are refused (400 / 503). Production refuses
# to start without a key of at least SUBJECT_KEY_MIN_LENGTH characters, or with the default.
DEV_SUBJECT_KEY = "dev-subject-key-not-for-production"
SUBJECT_KEY_MIN_LENGTH = 32
SUBJECT_KEY = env.str("SUBJECT_KEY", default=DEV_SUBJECT_KEY if DEBUG and not PRODUCTION else "")
if PRODUCTION:
    SUBJECT_KEY = env.str("SUBJECT_KEY")  # required, as SECRET_KEY is
    if len(SUBJECT_KEY) < SUBJECT_KEY_MIN_LENGTH or SUBJECT_KEY == DEV_SUBJECT_KEY:
        raise ImproperlyConfigured(
            f"SUBJECT_KEY must be a random key of at least {SUBJECT_KEY_MIN_LENGTH} characters in production, "
            "never the development default (e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')."
        )
# Days raw predictions and labels are kept when a model has no retention policy of its own
RETENTION_DEFAULT_DAYS = {
    "low": env.int("RETENTION_DEFAULT_DAYS_LOW", default=90),
    "medium": env.int("RETENTION_DEFAULT_DAYS_MEDIUM", default=183),
    "high": env.int("RETENTION_DEFAULT_DAYS_HIGH", default=365),
}
# Daily partitions created ahead of today by the beat task
PARTITIONS_AHEAD_DAYS = env.int("PARTITIONS_AHEAD_DAYS", default=7)
# Deadline to answer an erasure request (GDPR Art. 12(3): one month)
ERASURE_DEADLINE_DAYS = env.int("ERASURE_DEADLINE_DAYS", default=30)
# --- end retention and erasure -------------------------------------------------------------------
# --- Live evidence of challengers (monitoring/services/live_evidence.py) ---------------------------
# Days of paired shadow traffic (ending with the latest paired hour) summed into a promotion
# request's live evidence.
LIVE_EVIDENCE_DAYS = env.int("LIVE_EVIDENCE_DAYS", default=14)
# An hour's raw rows are read and kept a slice of prediction time at a time, and the slices
# kept this long (monitoring/services/window_slices.py): the live hours' recomputations re-read
# only their changed slices; older hours are read whole. A slice width divides an hour. 10 s:
# at 35,000 rows/s a live slice holds 350,000 rows, re-read in ~4 s (a minute's: ~21 s).
WINDOW_SLICE_SECONDS = env.int("WINDOW_SLICE_SECONDS", default=10)
# A sparse model's consecutive slices are merged until one holds this many rows: each slice
# costs a few ms to bin, store and sum whatever its rows, and re-reading 5,000 rows ~45 ms.
WINDOW_SLICE_MIN_ROWS = env.int("WINDOW_SLICE_MIN_ROWS", default=5000)
WINDOW_SLICES_KEPT_HOURS = env.int("WINDOW_SLICES_KEPT_HOURS", default=6)
if WINDOW_SLICE_SECONDS < 1 or 3600 % WINDOW_SLICE_SECONDS:
    raise ImproperlyConfigured("WINDOW_SLICE_SECONDS must divide 3600 (an hour) into whole slices.")
if WINDOW_SLICE_MIN_ROWS < 1:
    raise ImproperlyConfigured("WINDOW_SLICE_MIN_ROWS must be at least 1.")
# --- end live evidence ----------------------------------------------------------------------------
