"""Login throttling: failed logins are counted in the shared cache (Redis when REDIS_URL is set),
per client address and per username, and past a limit every login of that address or username is
refused, right password or not, until the lockout window ends.

- `ThrottledModelBackend` (first in AUTHENTICATION_BACKENDS) refuses a locked login for every
  authentication path, by raising PermissionDenied, which stops Django from trying other backends.
- Failures are counted from Django's `user_login_failed` signal (connected in `apps.py`).
- `ThrottledAdminLoginForm` tells the person at the admin login page why they cannot log in.

An address counts the failures of every username tried from it (LOGIN_FAILURE_LIMIT); a username
counts the failures from every address (LOGIN_USERNAME_FAILURE_LIMIT, higher, so one guesser
cannot lock a colleague out with a few tries). A success does not clear the address's count: an
attacker with an account of their own cannot reset it between guesses. Behind a reverse proxy,
TRUSTED_PROXY_HOPS says which X-Forwarded-For entry is the client (the proxy must overwrite, not
append to, what the client sent in that many hops).
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

logger = logging.getLogger(__name__)

LOCKED_MESSAGE = "Too many failed logins. Try again in %(minutes)d minutes."


def client_address(request: HttpRequest | None) -> str:
    if request is None:
        return "unknown"
    hops = int(getattr(settings, "TRUSTED_PROXY_HOPS", 0))
    if hops > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
        if len(forwarded) >= hops:
            return forwarded[-hops][:64]
    return str(request.META.get("REMOTE_ADDR") or "unknown")[:64]


def _key(kind: str, value: str) -> str:
    return f"login-failures:{kind}:{hashlib.sha256(value.encode()).hexdigest()[:32]}"


def _keys(request: HttpRequest | None, username: str | None) -> tuple[str, str]:
    return _key("address", client_address(request)), _key("username", (username or "").strip().lower()[:150])


def locked(request: HttpRequest | None, username: str | None) -> bool:
    address_key, username_key = _keys(request, username)
    counts = cache.get_many([address_key, username_key])
    return (int(counts.get(address_key, 0)) >= settings.LOGIN_FAILURE_LIMIT
            or int(counts.get(username_key, 0)) >= settings.LOGIN_USERNAME_FAILURE_LIMIT)


def record_failure(request: HttpRequest | None, username: str | None) -> None:
    window = settings.LOGIN_LOCKOUT_SECONDS
    for key in _keys(request, username):
        cache.add(key, 0, timeout=window)  # the window starts at the first failure
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.add(key, 1, timeout=window)


def forget(request: HttpRequest | None = None, username: str | None = None, *, address: bool = True) -> None:
    """Clear the counts of this username (and, with `address`, of the request's address)."""
    address_key, username_key = _keys(request, username)
    cache.delete_many([address_key, username_key] if address else [username_key])


class ThrottledModelBackend(ModelBackend):
    def authenticate(self, request: HttpRequest | None, username: str | None = None, password: str | None = None,
                     **kwargs: Any) -> Any:
        if username is None:
            username = kwargs.get("username")
        if locked(request, username):
            logger.warning("login refused: too many failures (address %s, username %r)",
                           client_address(request), (username or "")[:150])
            raise PermissionDenied("too many failed logins")
        return super().authenticate(request, username=username, password=password, **kwargs)


def on_login_failed(sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None,
                    **kwargs: Any) -> None:
    record_failure(request, str(credentials.get("username") or ""))


def on_logged_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    forget(request, user.get_username(), address=False)


class ThrottledAdminLoginForm(AdminAuthenticationForm):
    """The admin login form, saying so when the login is locked rather than 'wrong password'."""

    def clean(self) -> dict[str, Any]:
        if locked(self.request, self.cleaned_data.get("username")):
            raise forms.ValidationError(LOCKED_MESSAGE, code="throttled",
                                        params={"minutes": max(1, settings.LOGIN_LOCKOUT_SECONDS // 60)})
        return super().clean()
