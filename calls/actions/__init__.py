"""The only place call records are written, one module per domain.

Each `do_*` function writes its rows in one transaction, bumps the call's sequence number with an
atomic F() increment, and publishes exactly one event (or none, when nothing changed) through
`calls.publish` after commit. The functions are synchronous: consumers call them through
`database_sync_to_async`, Celery tasks call them directly. Tasks never write a record themselves.

- `calls`: start, refuse, answer, heartbeat, end; the reaper's query
- `sessions`: the Realtime sessions (segments) a call runs on
- `turns`: transcript items, handoffs, tool invocations, guardrail trips
- `escalations`: escalations and their webhook delivery
- `usage`: usage and cost, latency, caller idle time
- `summaries`: rolling and post-call summaries
- `supervisors`: supervisor actions, listening in
- `people`: a person takes a call over from the agent and hands it back; the queue of human agents
- `retention`: removing the caller's words from old calls
"""

from calls.actions.calls import (
    do_answer_call,
    do_end_call,
    do_heartbeat,
    do_refuse_call,
    do_start_call,
    live_calls_without_heartbeat,
)
from calls.actions.escalations import do_claim_escalation, do_escalate, do_finish_escalation, escalation_webhook_url
from calls.actions.people import (
    do_accept_queue_entry,
    do_enqueue_call,
    do_escalate_to_queue,
    do_hand_back,
    do_leave_queue,
    do_queue_timeout,
    do_queue_timeout_call,
    do_save_voicemail,
    do_set_available,
    do_take_over,
    open_take_over,
    waiting_entries,
)
from calls.actions.retention import REMOVED, do_remove_words, redact_arguments
from calls.actions.sessions import do_close_session, do_open_session
from calls.actions.summaries import NO_CONVERSATION, do_claim_summary, do_record_summary
from calls.actions.supervisors import SupervisorActionRefused, do_listen, do_stop_listening, do_supervisor_action
from calls.actions.turns import (
    do_mark_handoff_applied,
    do_record_guardrail,
    do_record_handoff,
    do_record_tool,
    do_record_transcript,
    do_set_current_agent,
)
from calls.actions.usage import (
    LATENCY_SAMPLES_KEPT,
    add_usage,
    do_record_caller_idle,
    do_record_latency,
    do_record_usage,
)
from calls.publish import send_to_call

__all__ = [
    "LATENCY_SAMPLES_KEPT",
    "NO_CONVERSATION",
    "REMOVED",
    "SupervisorActionRefused",
    "add_usage",
    "do_accept_queue_entry",
    "do_answer_call",
    "do_claim_escalation",
    "do_claim_summary",
    "do_close_session",
    "do_end_call",
    "do_enqueue_call",
    "do_escalate",
    "do_escalate_to_queue",
    "do_finish_escalation",
    "do_hand_back",
    "do_heartbeat",
    "do_leave_queue",
    "do_listen",
    "do_mark_handoff_applied",
    "do_open_session",
    "do_queue_timeout",
    "do_queue_timeout_call",
    "do_record_caller_idle",
    "do_record_guardrail",
    "do_record_handoff",
    "do_record_latency",
    "do_record_summary",
    "do_record_tool",
    "do_record_transcript",
    "do_record_usage",
    "do_refuse_call",
    "do_remove_words",
    "do_save_voicemail",
    "do_set_available",
    "do_set_current_agent",
    "do_start_call",
    "do_stop_listening",
    "do_supervisor_action",
    "do_take_over",
    "escalation_webhook_url",
    "live_calls_without_heartbeat",
    "open_take_over",
    "redact_arguments",
    "send_to_call",
    "waiting_entries",
]
