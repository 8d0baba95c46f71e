"""Login throttling: past the limit of failed logins from one address, or on one username from
anywhere, even the right password is refused until the lockout ends, with a clear message."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import authenticate
from django.test import Client, RequestFactory

from contactcenter import login_throttle

pytestmark = pytest.mark.django_db

PASSWORD = "the-right-password-42"


@pytest.fixture
def admin_user(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser(f"admin-{secrets.token_hex(4)}", password=PASSWORD)


@pytest.fixture
def addresses() -> Iterator[list[str]]:
    """Client addresses of this test (not 127.0.0.1, which other tests log in from); their counts
    are cleared afterwards."""
    used: list[str] = []
    yield used
    for address in used:
        login_throttle.forget(RequestFactory().get("/", REMOTE_ADDR=address))


def address(used: list[str]) -> str:
    value = f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"
    used.append(value)
    return value


def from_address(value: str) -> Any:
    return RequestFactory().post("/admin/login/", REMOTE_ADDR=value)


def admin_login(client: Client, username: str, password: str) -> Any:
    return client.post("/admin/login/?next=/admin/", {"username": username, "password": password})


def logged_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def test_thirty_wrong_passwords_lock_the_address(admin_user: Any, addresses: list[str]) -> None:
    attacker = Client(REMOTE_ADDR=address(addresses))
    for _ in range(30):
        assert admin_login(attacker, admin_user.username, "wrong-guess").status_code == 200
    refused = admin_login(attacker, admin_user.username, PASSWORD)
    assert not logged_in(attacker)
    assert "Too many failed logins" in refused.content.decode()
    # The right password refused through every path, not just the admin form.
    assert authenticate(from_address(addresses[0]), username=admin_user.username, password=PASSWORD) is None
    login_throttle.forget(RequestFactory().get("/", REMOTE_ADDR=addresses[0]), admin_user.username)


def test_the_address_limit_spares_other_addresses(admin_user: Any, addresses: list[str], settings: Any) -> None:
    settings.LOGIN_FAILURE_LIMIT = 3
    attacker = Client(REMOTE_ADDR=address(addresses))
    for _ in range(3):
        admin_login(attacker, admin_user.username, "wrong-guess")
    admin_login(attacker, admin_user.username, PASSWORD)
    assert not logged_in(attacker)
    colleague = Client(REMOTE_ADDR=address(addresses))
    admin_login(colleague, admin_user.username, PASSWORD)
    assert logged_in(colleague)


def test_a_username_guessed_from_many_addresses_is_locked(admin_user: Any, addresses: list[str],
                                                          settings: Any) -> None:
    settings.LOGIN_FAILURE_LIMIT, settings.LOGIN_USERNAME_FAILURE_LIMIT = 5, 4
    for _ in range(4):
        admin_login(Client(REMOTE_ADDR=address(addresses)), admin_user.username, "wrong-guess")
    fresh = Client(REMOTE_ADDR=address(addresses))
    assert not fresh.login(username=admin_user.username, password=PASSWORD)
    login_throttle.forget(username=admin_user.username, address=False)
    assert fresh.login(username=admin_user.username, password=PASSWORD)


def test_the_lockout_ends(admin_user: Any, addresses: list[str], settings: Any) -> None:
    settings.LOGIN_FAILURE_LIMIT, settings.LOGIN_LOCKOUT_SECONDS = 2, 5
    client = Client(REMOTE_ADDR=address(addresses))
    admin_login(client, admin_user.username, "wrong-guess")
    window_ends = time.monotonic() + 5.3  # the window opened at the first failure, before this line
    admin_login(client, admin_user.username, "wrong-guess")
    admin_login(client, admin_user.username, PASSWORD)
    assert not logged_in(client)
    time.sleep(max(0.0, window_ends - time.monotonic()))
    admin_login(client, admin_user.username, PASSWORD)
    assert logged_in(client)


def test_behind_a_proxy_the_forwarded_address_counts(settings: Any) -> None:
    settings.TRUSTED_PROXY_HOPS = 1
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="6.6.6.6, 203.0.113.9")
    assert login_throttle.client_address(request) == "203.0.113.9"  # what the proxy saw, not what the client wrote
    settings.TRUSTED_PROXY_HOPS = 0
    assert login_throttle.client_address(request) == "10.0.0.1"
