from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _backfill_versions(using: str = "default", **kwargs: Any) -> None:
    """After `migrate`: an existing database gets its scenarios as version 1 and its calls linked
    by spec hash. Runs with the current models (compiling needs them), once the schema is whole."""
    from django.db import connections

    connection = connections[using]
    with connection.cursor() as cursor:
        tables = set(connection.introspection.table_names(cursor))
        if not {"agents_scenarioversion", "calls_call"} <= tables:
            return
        columns = {c.name for c in connection.introspection.get_table_description(cursor, "calls_call")}
    if "scenario_version_id" not in columns:
        return
    from agents.versions import backfill_versions

    backfill_versions()


class AgentsConfig(AppConfig):
    name = "agents"
    verbose_name = "Agents and scenarios"

    def ready(self) -> None:
        post_migrate.connect(_backfill_versions, sender=self, dispatch_uid="agents.backfill_versions")
        from agents import signals

        signals.connect()
