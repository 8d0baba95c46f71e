from django.urls import path

from calls import dashboard_views, queue_views, sip_views, views

app_name = "calls"

urlpatterns = [
    path("calls/token/", views.browser_call_token, name="token"),
    path("calls/client-secret/", views.client_secret, name="client_secret"),
    path("twilio/voice", views.twilio_voice, name="twilio_voice"),
    path("openai/webhook", sip_views.openai_webhook, name="openai_webhook"),
    path("dashboard/", dashboard_views.dashboard, name="dashboard"),
    path("dashboard/calls/<int:call_id>/", dashboard_views.call_detail, name="dashboard_call"),
    path("dashboard/queue/", queue_views.queue_page, name="queue"),
    path("dashboard/queue/state/", queue_views.queue_state, name="queue_state"),
    path("dashboard/queue/availability/", queue_views.set_availability, name="queue_availability"),
    path("dashboard/queue/<int:entry_id>/accept/", queue_views.accept, name="queue_accept"),
    path("dashboard/queue/voicemails/<int:voicemail_id>.wav", queue_views.voicemail_audio, name="voicemail"),
]
