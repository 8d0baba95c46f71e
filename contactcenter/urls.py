from django.contrib import admin
from django.contrib.staticfiles.views import serve as serve_static
from django.urls import include, path, re_path

from calls.page_views import call_page
from contactcenter import ops

urlpatterns = [
    path("admin/", admin.site.urls),
    path("calls/", call_page, name="call_page"),
    path("healthz", ops.healthz, name="healthz"),
    path("metrics", ops.metrics_view, name="metrics"),
    # daphne serves the app alone: the page's CSS/JS/AudioWorklet come from the static finders.
    re_path(r"^static/(?P<path>.*)$", serve_static, {"insecure": True}),
    path("", include("calls.urls")),
]
