from django.apps import AppConfig


class ContactCenterConfig(AppConfig):
    name = "contactcenter"

    def ready(self) -> None:
        from django.contrib import admin
        from django.contrib.auth.signals import user_logged_in, user_login_failed
        from django.core import checks

        from contactcenter import login_throttle
        from contactcenter.checks import tool_secrets_bound

        checks.register(tool_secrets_bound)

        user_login_failed.connect(login_throttle.on_login_failed, dispatch_uid="login_throttle.failed")
        user_logged_in.connect(login_throttle.on_logged_in, dispatch_uid="login_throttle.logged_in")
        admin.site.login_form = login_throttle.ThrottledAdminLoginForm
