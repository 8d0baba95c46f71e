from realtime.server.testing import openai_client, realtime_server  # noqa: F401
