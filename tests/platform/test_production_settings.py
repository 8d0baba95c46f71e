"""DJANGO_PRODUCTION=true: one switch makes `manage.py check --deploy` clean (HTTPS redirect, HSTS,
secure cookies, the proxy's X-Forwarded-Proto), and it refuses to start half-configured."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEPLOY_WARNINGS = ("security.W004", "security.W008", "security.W012", "security.W016")


def check_deploy(**overrides: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "TOOL_SECRET_")) and k not in {"REDIS_URL", "TEST_DATABASE_NAME"}}
    env.update({"DJANGO_SETTINGS_MODULE": "contactcenter.settings", **overrides})
    return subprocess.run([sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT, check=False,
                          env=env, capture_output=True, text=True, timeout=120)


def production(**overrides: str) -> dict[str, str]:
    return {"DJANGO_PRODUCTION": "true", "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "cc.example.com", **overrides}


def test_check_deploy_is_clean_in_production_mode() -> None:
    result = check_deploy(**production())
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_without_the_switch_check_deploy_warns() -> None:
    result = check_deploy()
    assert result.returncode != 0
    assert all(code in result.stdout + result.stderr for code in DEPLOY_WARNINGS)


def test_production_refuses_to_start_half_configured() -> None:
    for missing, needs in (("DJANGO_SECRET_KEY", "DJANGO_SECRET_KEY must be set"),
                           ("DJANGO_ALLOWED_HOSTS", "DJANGO_ALLOWED_HOSTS must name")):
        settings = production()
        del settings[missing]
        result = check_deploy(**settings)
        assert result.returncode != 0 and needs in result.stderr, result.stderr
    debug = check_deploy(**production(DJANGO_DEBUG="true"))
    assert debug.returncode != 0 and "DJANGO_DEBUG must be off" in debug.stderr


def test_a_tool_secret_without_hosts_is_reported() -> None:
    result = check_deploy(**production(TOOL_SECRET_CRM="crm-key"))
    assert result.returncode != 0 and "contactcenter.W001" in result.stdout + result.stderr
    assert "crm-key" not in result.stdout + result.stderr
    bound = check_deploy(**production(TOOL_SECRET_CRM="crm-key", TOOL_SECRET_CRM_HOSTS="crm.example.com"))
    assert bound.returncode == 0, bound.stdout + bound.stderr
