from django.apps import AppConfig


class CallsConfig(AppConfig):
    name = "calls"
    verbose_name = "Calls"

    def ready(self) -> None:
        # Register the call tasks in every process (Celery's autodiscovery runs only in its worker):
        # calls.actions queues them by name and never imports them.
        from calls import tasks  # noqa: F401
