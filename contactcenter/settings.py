"""Settings, read from the environment (django-environ). Every knob is documented in .env.example.

Embedded defaults mean nothing is needed to start: SQLite, the in-memory channel layer,
and the local Realtime-protocol server when no OpenAI key is set.
"""

import os
import secrets
from pathlib import Path

import environ

from realtime.config import DEFAULT_PRICES, DEFAULT_REALTIME_MODEL, DEFAULT_SUPERVISOR_MODEL
from realtime.tools import secrets_from_environment

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)



def _local_secret_key(path: Path) -> str:
    """Without DJANGO_SECRET_KEY: a random key made once for this checkout (var/secret_key, mode
    0600) and shared by every process of it, never a fixed one that would let anyone sign tokens.
    Written aside and linked into place, so concurrent first starts agree on one key."""
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}")
        with os.fdopen(os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
            handle.write(secrets.token_urlsafe(50))
        try:
            os.link(draft, path)
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text().strip()


SECRET_KEY = env("DJANGO_SECRET_KEY", default="") or _local_secret_key(BASE_DIR / "var" / "secret_key")
DEBUG = env.bool("DJANGO_DEBUG", default=False)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "contactcenter",
    "agents",
    "calls",
    "demo",
    "audit",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "contactcenter.urls"

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

WSGI_APPLICATION = None
ASGI_APPLICATION = "contactcenter.asgi.application"

DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
# Parallel test runs (several checkouts on one server) can name their own test database.
if env("TEST_DATABASE_NAME", default=""):
    DATABASES["default"]["TEST"] = {"NAME": env("TEST_DATABASE_NAME")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default serves several processes (daphne workers, Celery): WAL lets readers
    # run beside the writer, IMMEDIATE takes the write lock when a transaction starts (no
    # upgrade deadlock, so the busy timeout applies), and writers wait instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update({
        "transaction_mode": "IMMEDIATE",
        "timeout": env.int("SQLITE_BUSY_TIMEOUT_SECONDS", default=30),
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    })
# Connections are kept between requests and records (each thread keeps its own, checked before
# reuse): opening one per record cost more CPU than the record. 0 closes them after each use.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=300)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Login throttling (contactcenter/login_throttle.py): after LOGIN_FAILURE_LIMIT failed logins from
# one client address, or LOGIN_USERNAME_FAILURE_LIMIT on one username from anywhere, every login of
# that address or username is refused until LOGIN_LOCKOUT_SECONDS after the first failure.
AUTHENTICATION_BACKENDS = ["contactcenter.login_throttle.ThrottledModelBackend"]
LOGIN_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", default=5)
LOGIN_USERNAME_FAILURE_LIMIT = env.int("LOGIN_USERNAME_FAILURE_LIMIT", default=20)
LOGIN_LOCKOUT_SECONDS = env.int("LOGIN_LOCKOUT_SECONDS", default=900)

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
STATIC_ROOT = BASE_DIR / "staticfiles"

LOGIN_URL = "/admin/login/"

# --- Redis: the channel layer and Celery's broker/results -------------------------------------
REDIS_URL = env("REDIS_URL", default="")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "contactcenter.layers.ResilientRedisChannelLayer",
            # redis-py 8 reads with a 5 s socket timeout by default, the same as channels_redis's
            # 5 s BZPOPMIN: an idle consumer's receive then fails with "Timeout reading". Longer reads.
            "CONFIG": {"hosts": [{"address": REDIS_URL, "socket_timeout": 30}], "capacity": 1000, "expiry": 30},
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    CELERY_BROKER_URL = "memory://"
    CELERY_RESULT_BACKEND = "cache+memory://"
    # No broker: tasks run in-process (the run command says so at start-up).
    CELERY_TASK_ALWAYS_EAGER = True

CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
# Three queues, so that what a live call waits for never sits behind post-call work or webhooks:
#   live       rolling context summaries a call is waiting for, hang-up work (the reaper)
#   post_call  post-call summaries and dispositions (retried for up to minutes), other batch work
#   webhooks   escalation webhooks to other systems (slow or failing endpoints stay here)
# The `make run` worker consumes all three (TASK_QUEUES_CONSUMED); at scale, run a worker per queue.
CELERY_TASK_DEFAULT_QUEUE = "post_call"
CELERY_TASK_ROUTES = {
    "calls.tasks.summarize_context": {"queue": "live"},
    "calls.tasks.reap_lost_calls": {"queue": "live"},
    "calls.tasks.summarize_call": {"queue": "post_call"},
    "calls.tasks.post_escalation": {"queue": "webhooks"},
}
TASK_QUEUES_CONSUMED = ("live", "post_call", "webhooks")

# --- OpenAI / the Realtime upstream ------------------------------------------------------------
# No key: the embedded Realtime-protocol server (python -m realtime.server) is the upstream.
OPENAI_API_KEY = env("OPENAI_API_KEY", default="")
LOCAL_REALTIME_URL = env("LOCAL_REALTIME_URL", default="http://127.0.0.1:8765/v1")
OPENAI_BASE_URL = env("OPENAI_BASE_URL", default="" if OPENAI_API_KEY else LOCAL_REALTIME_URL)
# The offline engine a scenario with failover_provider "offline" fails over to.
OFFLINE_ENGINE_URL = env("OFFLINE_ENGINE_URL", default=LOCAL_REALTIME_URL)
# gpt-realtime is marked deprecated (shutdown announced) by the openai package; use a current one.
REALTIME_DEFAULT_MODEL = env("REALTIME_DEFAULT_MODEL", default=DEFAULT_REALTIME_MODEL)
SUPERVISOR_DEFAULT_MODEL = env("SUPERVISOR_DEFAULT_MODEL", default=DEFAULT_SUPERVISOR_MODEL)
SUPERVISOR_TIMEOUT_SECONDS = env.float("SUPERVISOR_TIMEOUT_SECONDS", default=8.0)
TOOL_TIMEOUT_SECONDS = env.float("TOOL_TIMEOUT_SECONDS", default=10.0)
TOOL_APPROVAL_TIMEOUT_SECONDS = env.float("TOOL_APPROVAL_TIMEOUT_SECONDS", default=60.0)
WEBHOOK_MAX_RESPONSE_BYTES = env.int("WEBHOOK_MAX_RESPONSE_BYTES", default=64 * 1024)
REQUIRED_TOOL_TURNS_LIMIT = env.int("REQUIRED_TOOL_TURNS_LIMIT", default=3)

# Specialist instructions stay short: the admin enforces this many characters.
AGENT_INSTRUCTIONS_MAX_CHARS = env.int("AGENT_INSTRUCTIONS_MAX_CHARS", default=750)

# Webhook tools name a secret by setting name; the secret itself lives only in the environment.
# TOOL_SECRET_<NAME>=value becomes TOOL_SECRETS["<NAME>"], sent only to the hosts listed in
# TOOL_SECRET_<NAME>_HOSTS (host or host:port, comma-separated); without hosts it is never sent.
TOOL_SECRETS = secrets_from_environment(env.ENVIRON)

# Price per million tokens, per model class (USD): the engine's table ($32/M audio in, $0.40/M
# cached, $64/M audio out for the gpt-realtime class; text likewise).
REALTIME_PRICES = DEFAULT_PRICES

# --- OpenAI SIP (POST /openai/webhook, realtime.call.incoming) -----------------------------------
# The webhook endpoint's signing secret (whsec_...); unset: every webhook is refused (503).
OPENAI_WEBHOOK_SECRET = env("OPENAI_WEBHOOK_SECRET", default="")
# A SIP header (set by your trunk or PBX) naming the scenario of a call; then the default scenario
# (empty: the first scenario by slug). An unknown scenario rejects the call (SIP 404).
# The trunk must set or strip this header: a caller's INVITE may carry it. The allow-list (slugs,
# comma-separated) limits what it may name; a call naming another scenario is rejected.
SIP_SCENARIO_HEADER = env("SIP_SCENARIO_HEADER", default="X-Scenario")
SIP_SCENARIO_HEADER_ALLOWED = env.list("SIP_SCENARIO_HEADER_ALLOWED", default=[])
SIP_DEFAULT_SCENARIO = env("SIP_DEFAULT_SCENARIO", default="")

# --- Twilio ------------------------------------------------------------------------------------
TWILIO_AUTH_TOKEN = env("TWILIO_AUTH_TOKEN", default="")
PUBLIC_BASE_URL = env("PUBLIC_BASE_URL", default="http://127.0.0.1:8000")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"call": {"()": "contactcenter.logs.CallContext"}},
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s call=%(call_id)s %(message)s"},
        "json": {"()": "contactcenter.logs.JsonFormatter"},
    },
    # LOG_FORMAT=json: one JSON object per line, each with the call's id (contactcenter/logs.py).
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["call"],
                             "formatter": "json" if env("LOG_FORMAT", default="plain") == "json" else "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"httpx": {"level": "WARNING"}, "daphne": {"level": "WARNING"}},
}

# --- Operations (/healthz, /metrics) ------------------------------------------------------------
# A scraper sends `Authorization: Bearer <METRICS_TOKEN>`; unset: /metrics is for staff users only.
METRICS_TOKEN = env("METRICS_TOKEN", default="")

# --- Live calls (calls/) -----------------------------------------------------------------------
# Browser call tokens and Twilio stream tokens expire after this many seconds.
CALL_TOKEN_MAX_AGE_SECONDS = env.int("CALL_TOKEN_MAX_AGE_SECONDS", default=60)
# A consumer touches Call.last_heartbeat this often; the reaper (every CALL_REAPER_SECONDS) ends calls
# silent for longer than CALL_HEARTBEAT_TIMEOUT_SECONDS with end reason "lost": a call whose worker
# died is ended within timeout + reaper period (40 s by default).
CALL_HEARTBEAT_SECONDS = env.float("CALL_HEARTBEAT_SECONDS", default=10.0)
CALL_HEARTBEAT_TIMEOUT_SECONDS = env.int("CALL_HEARTBEAT_TIMEOUT_SECONDS", default=30)
CALL_REAPER_SECONDS = env.float("CALL_REAPER_SECONDS", default=10.0)
# A call the reaper finds silent is ended only if still silent this much later: after a database
# outage the live calls' heartbeats land again within a second (calls.live.keep_heartbeat).
CALL_REAPER_CONFIRM_SECONDS = env.float("CALL_REAPER_CONFIRM_SECONDS", default=2.5)
# While the database is unreachable a live call's records are held in memory and written when it
# is back, in order; a record still unwritten after this long is dropped and logged.
CALL_RECORD_HOLD_SECONDS = env.float("CALL_RECORD_HOLD_SECONDS", default=300.0)
# Largest WebSocket frame a call consumer accepts (bytes); larger frames are refused and logged.
CALL_MAX_FRAME_BYTES = env.int("CALL_MAX_FRAME_BYTES", default=64 * 1024)
# Live calls one daphne worker carries; past it a new call is refused at once (Twilio: a short
# sorry and a hang-up, or TWILIO_OVERFLOW_NUMBER; browser: a message on the page). 0: no limit.
# Measured with bench.bridge (README "Measured"): the most duplex calls (agent audio streaming
# back) one worker of the 2-core development machine carried at frame p99 < 20 ms both ways.
CALL_CAPACITY_PER_WORKER = env.int("CALL_CAPACITY_PER_WORKER", default=10)
# Where Twilio puts a caller through to when this worker is full (empty: sorry and hang up).
TWILIO_OVERFLOW_NUMBER = env("TWILIO_OVERFLOW_NUMBER", default="")
# Abuse limits (calls.limits). Per user: live calls (all processes, from the call records) and open
# browser sockets (call page + dashboards, per process). Per call socket: typed turns, push-to-talk
# presses and playback reports per second (with a burst), and how many assistant items the playback
# tracker keeps. Twilio: seconds a media socket may go without a valid start, and how many such
# pending sockets a process holds at once.
USER_MAX_LIVE_CALLS = env.int("USER_MAX_LIVE_CALLS", default=3)
USER_MAX_SOCKETS = env.int("USER_MAX_SOCKETS", default=20)
CALL_TEXT_TURNS_PER_SECOND = env.float("CALL_TEXT_TURNS_PER_SECOND", default=1.0)
CALL_TEXT_TURNS_BURST = env.int("CALL_TEXT_TURNS_BURST", default=3)
CALL_PTT_PER_SECOND = env.float("CALL_PTT_PER_SECOND", default=4.0)
CALL_PTT_BURST = env.int("CALL_PTT_BURST", default=8)
CALL_PLAYBACK_REPORTS_PER_SECOND = env.float("CALL_PLAYBACK_REPORTS_PER_SECOND", default=50.0)
CALL_PLAYBACK_REPORTS_BURST = env.int("CALL_PLAYBACK_REPORTS_BURST", default=100)
TWILIO_START_TIMEOUT_SECONDS = env.float("TWILIO_START_TIMEOUT_SECONDS", default=5.0)
TWILIO_MAX_PENDING_STREAMS = env.int("TWILIO_MAX_PENDING_STREAMS", default=100)
# Deepest JSON nesting a dashboard socket parses; deeper frames close the socket with 4400.
DASHBOARD_MAX_JSON_DEPTH = env.int("DASHBOARD_MAX_JSON_DEPTH", default=32)
# Listening in (calls.listen): frames a call keeps for its listeners before dropping the oldest,
# frames a listener's socket may fall behind (then it is closed, 4460), the oldest frame it still
# sends (seconds), and how often a listener asks the call to keep publishing.
LISTEN_TAP_MAX_FRAMES = env.int("LISTEN_TAP_MAX_FRAMES", default=50)
LISTEN_LISTENER_MAX_FRAMES = env.int("LISTEN_LISTENER_MAX_FRAMES", default=200)
LISTEN_MAX_LAG_SECONDS = env.float("LISTEN_MAX_LAG_SECONDS", default=2.0)
LISTEN_KEEPALIVE_SECONDS = env.float("LISTEN_KEEPALIVE_SECONDS", default=5.0)
# People take the call (calls.takeover, calls.queue): a person's take-over socket silent this long
# (its worker died) hands the call back (0: three keepalive periods); a voicemail lasts at most this long.
TAKEOVER_LOST_SECONDS = env.float("TAKEOVER_LOST_SECONDS", default=0.0)
VOICEMAIL_SECONDS = env.float("VOICEMAIL_SECONDS", default=30.0)
# Scenario a phone call runs when /twilio/voice names none and its dialled number reaches none
# (empty: the first scenario by slug, only while no scenario lists inbound numbers).
TWILIO_DEFAULT_SCENARIO = env("TWILIO_DEFAULT_SCENARIO", default="")
# POST /twilio/voice: signed requests per caller number, and in all, per window (past either, the
# caller hears a short sorry). A repeated CallSid never opens a second call.
TWILIO_VOICE_CALLER_RATE_LIMIT = env.int("TWILIO_VOICE_CALLER_RATE_LIMIT", default=5)
TWILIO_VOICE_RATE_LIMIT = env.int("TWILIO_VOICE_RATE_LIMIT", default=300)
TWILIO_VOICE_RATE_WINDOW_SECONDS = env.int("TWILIO_VOICE_RATE_WINDOW_SECONDS", default=60)
# Ephemeral Realtime client secrets: at most this many per user per window.
CLIENT_SECRET_RATE_LIMIT = env.int("CLIENT_SECRET_RATE_LIMIT", default=5)
CLIENT_SECRET_RATE_WINDOW_SECONDS = env.int("CLIENT_SECRET_RATE_WINDOW_SECONDS", default=60)
CLIENT_SECRET_TTL_SECONDS = env.int("CLIENT_SECRET_TTL_SECONDS", default=60)
# Escalations are posted here when the scenario's escalate tool has no webhook of its own.
ESCALATION_WEBHOOK_URL = env("ESCALATION_WEBHOOK_URL", default="")
ESCALATION_WEBHOOK_TIMEOUT_SECONDS = env.float("ESCALATION_WEBHOOK_TIMEOUT_SECONDS", default=5.0)
# How long a live call waits for a rolling context summary from Celery before going without.
ROLLING_SUMMARY_TIMEOUT_SECONDS = env.float("ROLLING_SUMMARY_TIMEOUT_SECONDS", default=20.0)

if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}

# --- Audit (audit/) ---------------------------------------------------------------------------------
# Transcripts (and any recordings) of ended calls are kept this many days; then the beat task removes
# the caller's words and keeps the audit metadata. 0: kept for ever.
RETENTION_DAYS = env.int("RETENTION_DAYS", default=0)
RETENTION_BATCH = env.int("RETENTION_BATCH", default=500)
# The audit counts a call as "ended right after a handoff" when it ended within this many seconds.
AUDIT_ENDED_AFTER_HANDOFF_SECONDS = env.int("AUDIT_ENDED_AFTER_HANDOFF_SECONDS", default=15)

# --- Production (DJANGO_PRODUCTION=true) -----------------------------------------------------------
# One switch for a deployment behind a TLS-terminating reverse proxy: HTTPS only (redirect, HSTS,
# secure cookies), the proxy's X-Forwarded-Proto trusted, the client address taken from the
# proxy's X-Forwarded-For. It refuses to start without its own secret key and host names, or with
# DEBUG on; `manage.py check --deploy` is clean in this mode.
PRODUCTION = env.bool("DJANGO_PRODUCTION", default=False)
# Reverse proxies in front of Django that append the client's address to X-Forwarded-For (0: none,
# REMOTE_ADDR is the client). Used by the login throttle.
TRUSTED_PROXY_HOPS = env.int("TRUSTED_PROXY_HOPS", default=1 if PRODUCTION else 0)
if PRODUCTION:
    from django.core.exceptions import ImproperlyConfigured

    if DEBUG:
        raise ImproperlyConfigured("DJANGO_PRODUCTION is set: DJANGO_DEBUG must be off.")
    if not env("DJANGO_SECRET_KEY", default=""):
        raise ImproperlyConfigured("DJANGO_PRODUCTION is set: DJANGO_SECRET_KEY must be set (the same on every host).")
    if not env("DJANGO_ALLOWED_HOSTS", default=""):
        raise ImproperlyConfigured("DJANGO_PRODUCTION is set: DJANGO_ALLOWED_HOSTS must name the site's hosts.")
    # The proxy must set this header itself (overwriting any a client sent).
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=365 * 24 * 3600)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("DJANGO_HSTS_PRELOAD", default=True)
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

CELERY_BEAT_SCHEDULE = {
    "reap-lost-calls": {"task": "calls.tasks.reap_lost_calls", "schedule": CALL_REAPER_SECONDS},
    "apply-retention": {"task": "audit.tasks.apply_retention", "schedule": 3600.0},
}
