"""Shared fixtures. Tests talk to the real components: the database configured by DATABASE_URL
(PostgreSQL under `make test`), Redis, a Celery worker, WebSockets and the local protocol server."""
