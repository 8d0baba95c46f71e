"""System checks of the deployment's own settings (shown by `manage.py check` and at start-up)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Warning as CheckWarning


def tool_secrets_bound(app_configs: Any = None, **kwargs: Any) -> list[CheckWarning]:
    """A webhook tool secret with no hosts is never sent: say so before a call finds out."""
    return [
        CheckWarning(
            f"TOOL_SECRET_{name} is bound to no host, so it is never sent.",
            hint=f"Set TOOL_SECRET_{name}_HOSTS to the host (or host:port) of the webhook that needs it.",
            id="contactcenter.W001",
        )
        for name, secret in sorted(settings.TOOL_SECRETS.items()) if not secret.hosts
    ]
