"""WebSocket routes. Each consumer checks who is asking (session login or a signed token).

Browser sockets (`websocket_urlpatterns`) sit behind the allowed-hosts Origin check and the
session authentication. Twilio's media stream comes from Twilio's servers without an Origin
header and without our cookies: it is routed on its own, and its consumer checks the signed,
expiring stream token instead.
"""

from typing import Any

from channels.auth import AuthMiddlewareStack
from channels.routing import URLRouter
from channels.security.websocket import AllowedHostsOriginValidator
from django.urls import path

from calls.consumers import BrowserCallConsumer, TwilioMediaConsumer
from calls.dashboard_consumers import DashboardCallConsumer, DashboardConsumer
from calls.listen import ListenConsumer
from calls.publish import bind_server_loop
from calls.takeover import TakeoverConsumer

websocket_urlpatterns: list = [
    path("ws/calls/browser/", BrowserCallConsumer.as_asgi()),
    path("ws/dashboard/", DashboardConsumer.as_asgi()),
    path("ws/dashboard/calls/<int:call_id>/", DashboardCallConsumer.as_asgi()),
    path("ws/dashboard/calls/<int:call_id>/listen/", ListenConsumer.as_asgi()),
    path("ws/dashboard/calls/<int:call_id>/takeover/", TakeoverConsumer.as_asgi()),
]

twilio_websocket_urlpatterns: list = [
    path("twilio/media", TwilioMediaConsumer.as_asgi()),
]


class WebsocketApplication:
    """The "websocket" entry of the ASGI application: Twilio's route alone, the rest behind the checks."""

    def __init__(self) -> None:
        self.twilio = URLRouter(twilio_websocket_urlpatterns)
        self.browser = AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns)))

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        bind_server_loop()
        path = scope.get("path", "").lstrip("/")
        is_twilio = any(route.pattern.match(path) for route in twilio_websocket_urlpatterns)
        return await (self.twilio if is_twilio else self.browser)(scope, receive, send)


def websocket_application() -> WebsocketApplication:
    return WebsocketApplication()
