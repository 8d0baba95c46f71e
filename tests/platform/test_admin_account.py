"""The local admin account: created once, with a generated password printed that one time."""

import re
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command


def run() -> str:
    out = StringIO()
    call_command("ensureadmin", stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_password_is_generated_printed_once_and_works():
    first = run()
    match = re.search(r"password '([^']+)'", first)
    assert match, first
    password = match.group(1)
    assert len(password) >= 12
    user = get_user_model().objects.get(username="admin")
    assert user.is_superuser and user.check_password(password)

    second = run()
    assert password not in second
    assert "exists" in second
    assert get_user_model().objects.count() == 1


@pytest.mark.django_db
def test_two_fresh_machines_get_different_passwords():
    first = re.search(r"password '([^']+)'", run()).group(1)
    get_user_model().objects.all().delete()
    second = re.search(r"password '([^']+)'", run()).group(1)
    assert first != second
