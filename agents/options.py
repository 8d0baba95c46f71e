"""Choices offered to operators, read from the official `openai` package so they follow its types.

Voices, realtime models, transcription models and supervisor (Responses) models are the Literal
values the package declares; an operator picking from these lists cannot name something the API
does not know.
"""

from __future__ import annotations

import typing
from typing import Any

from openai.types.realtime.audio_transcription import AudioTranscription
from openai.types.realtime.realtime_audio_config_output import Voice
from openai.types.realtime.realtime_session_create_request import RealtimeSessionCreateRequest
from openai.types.shared.responses_model import ResponsesModel


def literal_values(annotation: Any) -> tuple[str, ...]:
    """Every string Literal value found in a (possibly nested) typing annotation, in order."""
    if typing.get_origin(annotation) is typing.Literal:
        return tuple(v for v in typing.get_args(annotation) if isinstance(v, str))
    values: list[str] = []
    for arg in typing.get_args(annotation):
        for value in literal_values(arg):
            if value not in values:
                values.append(value)
    return tuple(values)


VOICES: tuple[str, ...] = literal_values(Voice)
REALTIME_MODELS: tuple[str, ...] = literal_values(RealtimeSessionCreateRequest.model_fields["model"].annotation)
TRANSCRIPTION_MODELS: tuple[str, ...] = literal_values(AudioTranscription.model_fields["model"].annotation)
SUPERVISOR_MODELS: tuple[str, ...] = literal_values(ResponsesModel)

# Models whose voice list is the built-in one above. Every realtime model of the package offers
# all built-in voices; a text supervisor has none.
TOOL_CHOICE_MODES = ("auto", "required", "none")


def voices_for_model(model: str) -> tuple[str, ...]:
    """The built-in voices a realtime model offers (none for anything else)."""
    return VOICES if model in REALTIME_MODELS else ()
