"""Tools: a bad JSON Schema, name, handler or webhook secret is refused and nothing is saved."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import escape
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from agents.models import Tool

BAD_SCHEMA = {"type": "object", "properties": {"order_id": {"type": "strnig"}}}


def jsonschema_message(schema: dict[str, Any]) -> str:
    with pytest.raises(SchemaError) as caught:
        Draft202012Validator.check_schema(schema)
    return caught.value.message


def tool_post(**fields: Any) -> dict[str, Any]:
    data = {
        "name": "lookup_things", "description": "Looks things up.", "parameters": json.dumps({"type": "object"}),
        "kind": "python", "handler": "lookup_orders", "builtin": "", "webhook_url": "", "webhook_method": "POST",
        "webhook_timeout_seconds": "5", "webhook_secret_header": "", "webhook_secret_name": "",
    }
    data.update(fields)
    return data


def test_bad_schema_refused_by_the_model_with_the_jsonschema_text(db: Any) -> None:
    tool = Tool(name="lookup_things", description="x", parameters=BAD_SCHEMA, kind="python", handler="lookup_orders")
    with pytest.raises(ValidationError) as caught:
        tool.full_clean()
    assert jsonschema_message(BAD_SCHEMA) in " ".join(caught.value.message_dict["parameters"])


def test_bad_schema_refused_in_the_admin_with_the_exact_error(admin_client: Any) -> None:
    response = admin_client.post(reverse("admin:agents_tool_add"), tool_post(parameters=json.dumps(BAD_SCHEMA)))
    assert response.status_code == 200
    assert escape(jsonschema_message(BAD_SCHEMA)) in response.content.decode()
    assert not Tool.objects.exists()


def test_parameters_must_describe_an_object(admin_client: Any) -> None:
    response = admin_client.post(reverse("admin:agents_tool_add"), tool_post(parameters='{"type": "string"}'))
    assert "must describe an object" in response.content.decode()
    assert not Tool.objects.exists()


def test_a_good_tool_is_saved_from_the_admin(admin_client: Any) -> None:
    response = admin_client.post(reverse("admin:agents_tool_add"), tool_post())
    assert response.status_code == 302
    assert Tool.objects.get().handler == "lookup_orders"


@pytest.mark.parametrize(
    ("fields", "field", "words"),
    [
        ({"name": "has space"}, "name", "letters, digits"),
        ({"handler": "os.system"}, "handler", "not one of the available choices"),
        ({"kind": "webhook", "handler": "", "webhook_url": ""}, "webhook_url", "needs the URL"),
        ({"kind": "webhook", "handler": "", "webhook_url": "https://crm.example.com/hook",
          "webhook_secret_header": "X-Secret", "webhook_secret_name": "s3cr3t-value!"},
         "webhook_secret_name", "never the secret itself"),
        ({"kind": "builtin", "handler": "", "builtin": ""}, "builtin", "Pick which built-in"),
    ],
)
def test_tool_rules_refuse_in_the_admin(admin_client: Any, fields: dict[str, Any], field: str, words: str) -> None:
    response = admin_client.post(reverse("admin:agents_tool_add"), tool_post(**fields))
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert words in " ".join(errors.get(field, [])), errors
    assert not Tool.objects.exists()
