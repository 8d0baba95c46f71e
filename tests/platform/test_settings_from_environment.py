"""Settings come from the environment: embedded defaults, DATABASE_URL and REDIS_URL switches."""

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, django
from django.conf import settings
django.setup()
print(json.dumps({
    "engine": settings.DATABASES["default"]["ENGINE"],
    "db_name": str(settings.DATABASES["default"]["NAME"]),
    "layer": settings.CHANNEL_LAYERS["default"]["BACKEND"],
    "broker": settings.CELERY_BROKER_URL,
    "eager": getattr(settings, "CELERY_TASK_ALWAYS_EAGER", False),
    "base_url": settings.OPENAI_BASE_URL,
    "secret_key_sha": __import__("hashlib").sha256(settings.SECRET_KEY.encode()).hexdigest(),
}))
"""


def probe(**overrides: str) -> dict:
    env = {k: v for k, v in os.environ.items()
           if k not in {"DATABASE_URL", "REDIS_URL", "OPENAI_API_KEY", "OPENAI_BASE_URL", "TEST_DATABASE_NAME",
                        "DJANGO_SECRET_KEY"}}
    env.update({"DJANGO_SETTINGS_MODULE": "contactcenter.settings", **overrides})
    out = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                         check=True, timeout=60)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_embedded_defaults_need_nothing():
    found = probe()
    assert found["engine"] == "django.db.backends.sqlite3"
    assert found["layer"] == "channels.layers.InMemoryChannelLayer"
    assert found["eager"] is True
    # No key: the local Realtime-protocol server is the upstream.
    assert found["base_url"] == "http://127.0.0.1:8765/v1"


def test_database_url_switches_to_postgresql():
    found = probe(DATABASE_URL="postgres://postgres@127.0.0.1:5432/somewhere")
    assert found["engine"] == "django.db.backends.postgresql"
    assert found["db_name"] == "somewhere"


def test_redis_url_switches_channel_layer_and_celery():
    found = probe(REDIS_URL="redis://127.0.0.1:6379/5")
    assert found["layer"] == "contactcenter.layers.ResilientRedisChannelLayer"
    assert found["broker"] == "redis://127.0.0.1:6379/5"
    assert found["eager"] is False


def test_an_api_key_means_openai_unless_a_base_url_is_given():
    assert probe(OPENAI_API_KEY="sk-test")["base_url"] == ""
    assert probe(OPENAI_API_KEY="sk-test", OPENAI_BASE_URL="http://x/v1")["base_url"] == "http://x/v1"


def test_without_a_secret_key_one_is_generated_once_and_kept_private():
    import hashlib
    import stat

    first, second = probe(), probe()
    key_file = ROOT / "var" / "secret_key"
    assert first["secret_key_sha"] == second["secret_key_sha"]  # every process of the checkout agrees
    assert first["secret_key_sha"] == hashlib.sha256(key_file.read_text().strip().encode()).hexdigest()
    assert len(key_file.read_text().strip()) >= 50
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    given = probe(DJANGO_SECRET_KEY="from-the-environment")
    assert given["secret_key_sha"] == hashlib.sha256(b"from-the-environment").hexdigest()
