"""Short-lived signed tokens that let a WebSocket join a call.

Browser tokens carry who asked, which scenario and which codec; Twilio stream tokens carry the
ringing call that the TwiML answer created. Both are `django.core.signing` values with their own
salt (a token of one kind is never accepted as the other) and a maximum age. A browser token opens
one call: its random nonce is claimed in the shared cache (Redis) when a socket uses it
(`claim_browser_token`); a Twilio stream token is single-use because only a ringing call can be
answered with it.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from django.conf import settings
from django.core import signing
from django.core.cache import cache

BROWSER_SALT = "calls.browser-call"
TWILIO_SALT = "calls.twilio-stream"

CODECS = ("pcm16", "pcmu")


class TokenError(Exception):
    """The token is missing, malformed, tampered with or expired (the reason says which)."""


@dataclass(frozen=True)
class BrowserGrant:
    user_id: int
    scenario: str
    codec: str
    nonce: str = ""


@dataclass(frozen=True)
class TwilioGrant:
    call_id: int
    scenario: str


def browser_token(*, user_id: int, scenario: str, codec: str) -> str:
    if codec not in CODECS:
        raise ValueError(f"unknown codec {codec!r}")
    return signing.dumps({"u": user_id, "s": scenario, "c": codec, "n": secrets.token_urlsafe(16)},
                         salt=BROWSER_SALT, compress=True)


def read_browser_token(token: str | None) -> BrowserGrant:
    data = _load(token, BROWSER_SALT, settings.CALL_TOKEN_MAX_AGE_SECONDS)
    try:
        grant = BrowserGrant(user_id=int(data["u"]), scenario=str(data["s"]), codec=str(data["c"]),
                             nonce=str(data["n"]))
    except (KeyError, TypeError, ValueError) as error:
        raise TokenError("token payload is malformed") from error
    if grant.codec not in CODECS:
        raise TokenError("token names an unknown codec")
    return grant


def claim_browser_token(grant: BrowserGrant) -> bool:
    """Use the token once: True the first time, False ever after (kept past the token's lifetime)."""
    return bool(cache.add(f"calls:browser-token:{grant.nonce}", 1, timeout=settings.CALL_TOKEN_MAX_AGE_SECONDS + 60))


def twilio_stream_token(*, call_id: int, scenario: str) -> str:
    return signing.dumps({"call": call_id, "s": scenario}, salt=TWILIO_SALT, compress=True)


def read_twilio_stream_token(token: str | None) -> TwilioGrant:
    data = _load(token, TWILIO_SALT, settings.CALL_TOKEN_MAX_AGE_SECONDS)
    try:
        return TwilioGrant(call_id=int(data["call"]), scenario=str(data["s"]))
    except (KeyError, TypeError, ValueError) as error:
        raise TokenError("token payload is malformed") from error


def _load(token: str | None, salt: str, max_age: float) -> dict:
    if not token:
        raise TokenError("token is missing")
    try:
        data = signing.loads(token, salt=salt, max_age=max_age)
    except signing.SignatureExpired as error:
        raise TokenError("token has expired") from error
    except signing.BadSignature as error:
        raise TokenError("token signature is not valid") from error
    if not isinstance(data, dict):
        raise TokenError("token payload is malformed")
    return data
