from django.apps import AppConfig


class DemoConfig(AppConfig):
    """The demo business (retail and carrier): its records, its Python tools and `loaddemo`."""

    name = "demo"
    verbose_name = "Demo business records"

    def ready(self) -> None:
        from demo import handlers  # noqa: F401 - registers the demo's tool handlers
