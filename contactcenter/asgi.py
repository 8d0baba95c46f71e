import gc
import logging
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

# Everything loaded so far (Django, the apps, openai's models: some 200,000 objects) lives as long as
# the process. Left to the collector, each full collection walks all of it while holding the GIL,
# which stalls every call's audio on this worker for 100-200 ms on a busy 2-core machine; frozen,
# the collector only walks what calls create. The engine, which a call loads on first use, first.
import realtime  # noqa: E402, F401
from contactcenter.celery import app as _celery_app  # noqa: E402
from realtime.connection import shared_ssl_context  # noqa: E402

_celery_app.finalize(auto=True)  # the task modules a call's end imports to queue its summary
shared_ssl_context()  # the CA store, loaded once here rather than on the loop by the first call
try:
    from calls.sip import warm_up as _warm_up_sip

    _warm_up_sip()
except Exception:  # the first webhook pays for it instead
    logging.getLogger(__name__).warning("SIP warm-up skipped", exc_info=True)
gc.collect()
gc.freeze()
