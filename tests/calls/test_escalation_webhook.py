"""Escalations are posted to the scenario's webhook by the worker, retried, and never posted twice."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from calls import actions
from calls.models import Call, Escalation
from tests.calls.conftest import wait_for

pytestmark = [pytest.mark.celery, pytest.mark.django_db(transaction=True)]


class Webhook:
    """A CRM endpoint on an ephemeral port that answers with scripted status codes."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = list(statuses)
        self.requests: list[dict[str, Any]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.requests.append({"body": json.loads(body), "headers": dict(self.headers)})
                self.send_response(hook.statuses.pop(0) if hook.statuses else 200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/escalations"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def webhook() -> Any:
    hooks: list[Webhook] = []

    def make(statuses: list[int]) -> Webhook:
        hooks.append(Webhook(statuses))
        return hooks[-1]

    yield make
    for hook in hooks:
        hook.close()


def spec_with_webhook(url: str) -> dict[str, Any]:
    tool = {"name": "escalate_to_human", "kind": "builtin", "builtin": "escalate", "webhook": {"url": url}}
    return {"slug": "retail", "root_agent": "front", "hash": "c" * 64, "limits": {},
            "agents": {"front": {"slug": "front", "tools": [tool]}}}


def test_escalation_is_posted_after_a_failure_and_only_once(celery_worker: Any, webhook: Any) -> None:
    hook = webhook([503])
    call = actions.do_start_call(channel=Call.Channel.TWILIO, spec=spec_with_webhook(hook.url), caller_id="+1555")
    escalation = actions.do_escalate(call.pk, reason="caller wants a person", source="caller", agent="front")
    assert escalation.webhook_status == "pending"

    posted = wait_for(lambda: Escalation.objects.filter(pk=escalation.pk, webhook_status="posted").first(), 15)
    assert posted is not None, Escalation.objects.get(pk=escalation.pk).webhook_status
    assert posted.attempts == 2 and posted.webhook_response_code == 200 and posted.posted_at
    assert len(hook.requests) == 2  # the 503, then the retry that succeeded
    body = hook.requests[-1]["body"]
    assert body["reason"] == "caller wants a person" and body["source"] == "caller" and body["call_id"] == call.pk
    assert hook.requests[-1]["headers"]["Idempotency-Key"] == f"escalation-{escalation.pk}"

    from calls.tasks import post_escalation

    assert post_escalation.delay(escalation.pk).get(timeout=10) == "not pending"
    assert len(hook.requests) == 2


def test_escalation_without_a_webhook_is_only_recorded(celery_worker: Any) -> None:
    call = actions.do_start_call(channel=Call.Channel.BROWSER, spec=spec_with_webhook("")
                                 | {"agents": {}})
    escalation = actions.do_escalate(call.pk, reason="three failed tool calls", source="failures")
    assert escalation.webhook_status == "none" and escalation.webhook_url == ""
    from calls.tasks import post_escalation

    assert post_escalation.delay(escalation.pk).get(timeout=10) == "not pending"


def test_the_scenario_escalation_webhook_comes_first(celery_worker: Any, webhook: Any) -> None:
    scenario_hook, tool_hook = webhook([200]), webhook([200])
    spec = spec_with_webhook(tool_hook.url) | {"escalation_webhook_url": scenario_hook.url}
    call = actions.do_start_call(channel=Call.Channel.BROWSER, spec=spec)
    escalation = actions.do_escalate(call.pk, reason="caller asked for a supervisor", source="caller")
    assert escalation.webhook_url == scenario_hook.url
    posted = wait_for(lambda: Escalation.objects.filter(pk=escalation.pk, webhook_status="posted").first(), 15)
    assert posted is not None
    assert len(scenario_hook.requests) == 1 and tool_hook.requests == []


def test_every_webhook_attempt_reaches_the_call_page(celery_worker: Any, webhook: Any, listen: Any) -> None:
    """A dashboard sees the escalation's webhook go from pending through each attempt to posted."""
    hook = webhook([503])
    call = actions.do_start_call(channel=Call.Channel.TWILIO, spec=spec_with_webhook(hook.url), caller_id="+1555")
    listener = listen(call.pk)
    escalation = actions.do_escalate(call.pk, reason="caller wants a person", source="caller", agent="front")
    assert wait_for(lambda: Escalation.objects.filter(pk=escalation.pk, webhook_status="posted").exists(), 15)

    from calls.models import CallEvent

    statuses = [(event["escalation_id"], event["webhook_status"], event["webhook_response_code"], event["attempts"])
                for event in CallEvent.objects.filter(call_id=call.pk, type="escalation_status")
                .order_by("seq").values_list("event", flat=True)]
    assert statuses == [(escalation.pk, "posting", None, 1), (escalation.pk, "retrying", 503, 1),
                        (escalation.pk, "posting", 503, 2), (escalation.pk, "posted", 200, 2)]
    published = [m["event"]["webhook_status"] for m in listener.drain(3.0)
                 if m.get("event", {}).get("type") == "escalation_status"]
    assert published == ["posting", "retrying", "posting", "posted"]
