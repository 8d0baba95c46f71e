"""Create the local admin account once, with a generated password printed that one time only."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Create a local superuser with a generated password (printed once) unless one exists."

    def add_arguments(self, parser):  # type: ignore[no-untyped-def]
        parser.add_argument("--username", default="admin")

    def handle(self, *args, **options):  # type: ignore[no-untyped-def]
        User = get_user_model()
        username = options["username"]
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write("admin account: exists (its password was printed when it was created)")
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser(username=username, email="", password=password)
        self.stdout.write(self.style.WARNING(f"admin account created: username {username!r}, password {password!r}"))
        self.stdout.write("  (shown only this once; change it with `python manage.py changepassword admin`)")
