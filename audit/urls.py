from django.urls import path

from audit import views

app_name = "audit"

urlpatterns = [
    path("", views.handoffs, name="handoffs"),
    path("analytics/", views.analytics, name="analytics"),
    path("compare/", views.compare, name="compare"),
    path("export.csv", views.export, {"fmt": "csv"}, name="export_csv"),
    path("export.jsonl", views.export, {"fmt": "jsonl"}, name="export_jsonl"),
]
