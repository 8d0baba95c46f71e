"""The site's ASGI application with the browser call WebSocket answered by the fake consumer.

Used by the page-only browser test (daphne tests.browser.fake_asgi:application); everything else,
the page, static files, login and the real token view, is the real site.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contactcenter.settings")

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from django.urls import path

from contactcenter.asgi import application as site
from tests.browser.fake_consumer import FakeBrowserCallConsumer

fake_websocket = AuthMiddlewareStack(URLRouter([path("ws/calls/browser/", FakeBrowserCallConsumer.as_asgi())]))


async def application(scope, receive, send):  # type: ignore[no-untyped-def]
    if scope["type"] == "websocket":
        return await fake_websocket(scope, receive, send)
    return await site(scope, receive, send)
