import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "contactcenter.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter  # noqa: E402

from calls.publish import bind_server_loop  # noqa: E402
from contactcenter.routing import websocket_application  # noqa: E402


class ServerLoop:
    """Marks every connection with the server's loop: records written on its behalf publish through
    that loop's ordered sender instead of waiting for the channel layer (calls/actions.py)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        bind_server_loop()
        return await self.app(scope, receive, send)


application = ServerLoop(ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": websocket_application(),
    }
))
