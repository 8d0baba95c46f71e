"""Twilio: request signatures, the TwiML answer and the Media Streams message shapes.

Signature (X-Twilio-Signature): base64 of HMAC-SHA1, keyed with the account's auth token, over the
full URL Twilio requested followed by every POST parameter, sorted by name, each name immediately
followed by its value. Compared in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit
from xml.sax.saxutils import quoteattr

TWILIO_MULAW = "audio/x-mulaw"


def compute_signature(auth_token: str, url: str, params: Iterable[tuple[str, str]]) -> str:
    """The X-Twilio-Signature Twilio sends for a POST of `params` to `url`."""
    payload = url + "".join(name + value for name, value in sorted(params, key=lambda pair: (pair[0], pair[1])))
    digest = hmac.new(auth_token.encode(), payload.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def signature_is_valid(auth_token: str, signature: str, urls: Iterable[str],
                       params: Iterable[tuple[str, str]]) -> bool:
    """True when `signature` matches one of the URLs the request may have been sent to.

    With no auth token configured nothing is valid: an unsigned phone webhook is never accepted.
    """
    if not auth_token or not signature:
        return False
    pairs = list(params)
    valid = False
    for url in urls:
        expected = compute_signature(auth_token, url, pairs)
        valid |= hmac.compare_digest(expected.encode(), signature.encode())
    return valid


def media_stream_url(public_base_url: str, token: str) -> str:
    """wss://HOST/twilio/media?token=... for an https base (ws:// for a plain-http one)."""
    parts = urlsplit(public_base_url)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}/twilio/media?token={token}"


def connect_stream_twiml(stream_url: str, parameters: Mapping[str, str]) -> str:
    """<Connect><Stream> answer: Twilio opens a bidirectional media stream to `stream_url`."""
    params = "".join(
        f"<Parameter name={quoteattr(name)} value={quoteattr(value)}/>" for name, value in parameters.items()
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        f"<Response><Connect><Stream url={quoteattr(stream_url)}>{params}</Stream></Connect></Response>"
    )


def say_and_hangup_twiml(text: str) -> str:
    from xml.sax.saxutils import escape

    return f'<?xml version="1.0" encoding="UTF-8"?><Response><Say>{escape(text)}</Say><Hangup/></Response>'


def dial_twiml(number: str) -> str:
    """Put the caller through to another number (the overflow line)."""
    from xml.sax.saxutils import escape

    return f'<?xml version="1.0" encoding="UTF-8"?><Response><Dial>{escape(number)}</Dial></Response>'


def media_message(stream_sid: str, payload: bytes) -> dict:
    return {"event": "media", "streamSid": stream_sid, "media": {"payload": base64.b64encode(payload).decode()}}


def clear_message(stream_sid: str) -> dict:
    return {"event": "clear", "streamSid": stream_sid}
