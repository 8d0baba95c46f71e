from django.urls import path

from calls import dashboard_views, sip_views, views

app_name = "calls"

urlpatterns = [
    path("calls/token/", views.browser_call_token, name="token"),
    path("calls/client-secret/", views.client_secret, name="client_secret"),
    path("twilio/voice", views.twilio_voice, name="twilio_voice"),
    path("openai/webhook", sip_views.openai_webhook, name="openai_webhook"),
    path("dashboard/", dashboard_views.dashboard, name="dashboard"),
    path("dashboard/calls/<int:call_id>/", dashboard_views.call_detail, name="dashboard_call"),
]
