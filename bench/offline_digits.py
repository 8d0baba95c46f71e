"""Phone numbers, dates of birth and order numbers said aloud, through the offline engine's ears.

    python -m bench.offline_digits

Each case is synthesised with the piper voice (as the engine tests do: a quieter caller), run
through faster-whisper tiny.en and then through the dialogue policy, which fills a tool's
``phone`` / ``date_of_birth`` / ``order_id`` argument from the transcript. A case counts when the
argument is exactly the expected value. Spoken styles: digits written unbroken ("5551234567",
which piper reads as a cardinal number), digit words unbroken, grouped, "oh" for zero and
"double"/"triple".

"before" is the recogniser without a prompt and the policy reading only digits as written
(``DialoguePolicy(spoken_digits=False)``); "after" is what the engine does in a call: the
recogniser's prompt built from the question the agent just asked for that parameter
(`realtime.offline.hints`: the question plus a placeholder answer of the parameter's type, never
a case's answer) and the policy's spoken-digit readings. Both run on the same audio in the
same process. A few sentences without digits check that the prompt leaves ordinary speech alone.
The last line is machine-readable:
``RESULT digits_exact_before=... digits_exact_after=... stt_rtf_before=... stt_rtf=... ...``.
"""

from __future__ import annotations

import re
import statistics
import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from realtime import audio
from realtime.offline.hints import recognition_prompt
from realtime.offline.policy import DialoguePolicy
from realtime.offline.stt import Recognizer
from realtime.offline.tts import Synthesizer

PARAMS: dict[str, tuple[str, dict[str, Any]]] = {
    "phone": ("phone", {"type": "string", "description": "The caller's phone number"}),
    "date": ("date_of_birth", {"type": "string", "description": "The caller's date of birth"}),
    "order": ("order_id", {"type": "string", "pattern": r"^ORD-\d{5}$", "description": "The order number"}),
}

CASES: list[tuple[str, str, str]] = [
    # phone numbers, written unbroken (piper reads these as one big cardinal number)
    ("My phone number is 5551234567.", "phone", "5551234567"),
    ("It's 4158923047.", "phone", "4158923047"),
    ("You can reach me at 6175550142.", "phone", "6175550142"),
    ("My number is 2125550199.", "phone", "2125550199"),
    # digit words, unbroken
    ("My phone number is five five five one two three four five six seven.", "phone", "5551234567"),
    ("It's four one five eight nine two three oh four seven.", "phone", "4158923047"),
    ("My mobile is six one seven five five five zero one four two.", "phone", "6175550142"),
    ("Nine one nine four two two six six zero three.", "phone", "9194226603"),
    # grouped, with "oh"
    ("My number is two oh one, five five five, oh one nine eight.", "phone", "2015550198"),
    ("It's three one two, eight six seven, five three oh nine.", "phone", "3128675309"),
    ("My number is seven one eight, four four four, nine nine two one.", "phone", "7184449921"),
    ("Sure, it's four oh four, three three eight, two one oh oh.", "phone", "4043382100"),
    # double / triple
    ("Double five five, one two three, four five six seven.", "phone", "5551234567"),
    ("It's eight oh oh, double two three, four double nine one.", "phone", "8002234991"),
    ("It's three one two, triple five, double eight four six.", "phone", "3125558846"),
    # dates of birth
    ("My date of birth is March 3rd 1985.", "date", "1985-03-03"),
    ("I was born on the fourth of July nineteen ninety.", "date", "1990-07-04"),
    ("My birthday is 12/25/1979.", "date", "1979-12-25"),
    ("I was born on November twenty second, two thousand and one.", "date", "2001-11-22"),
    ("It's January 9th 1968.", "date", "1968-01-09"),
    # order numbers
    ("My order number is 48213.", "order", "ORD-48213"),
    ("The order is four eight two one three.", "order", "ORD-48213"),
    ("It's order one oh two oh four.", "order", "ORD-10204"),
    ("Order number seven seven zero nine one.", "order", "ORD-77091"),
]

PLAIN: list[tuple[str, tuple[str, ...]]] = [
    ("I would like to return the running shoes that arrived damaged.", ("return", "running shoes", "damaged")),
    ("Where is my nearest store?", ("nearest store",)),
    ("Can I speak to a real person, please?", ("speak", "person")),
    ("Are there any deals on headphones this week?", ("deals", "headphones")),
    ("I was charged twice on my last bill.", ("charged twice", "bill")),
]


@dataclass(frozen=True)
class Config:
    name: str
    biased: bool
    spoken_digits: bool


def tool_for(kind: str) -> dict[str, Any]:
    param, schema = PARAMS[kind]
    return {
        "type": "function",
        "name": "record_details",
        "description": "Record a detail the caller gives.",
        "parameters": {"type": "object", "properties": {param: schema}, "required": [param]},
    }


def question_prompt(kind: str) -> str:
    """The recogniser's prompt after the policy asked for the parameter of ``kind``."""
    policy = DialoguePolicy()
    hello = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hi, I need to give you a detail."}]}
    asked = policy.respond("You are a helpful agent.", [tool_for(kind)], [hello], "auto")
    said = {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": asked.text}]}
    return recognition_prompt("You are a helpful agent.", [tool_for(kind)], [hello, said])


def extract(policy: DialoguePolicy, kind: str, said: str) -> Any:
    """The argument the policy fills from ``said`` when it must call a tool taking only it."""
    param, _schema = PARAMS[kind]
    tool = tool_for(kind)
    item = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": said}]}
    result = policy.respond("You are a helpful agent.", [tool], [item], {"type": "function", "name": "record_details"})
    assert result.function_call is not None
    return result.function_call.arguments.get(param)


def words(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9 ]", " ", text.lower()).split())


def main() -> None:
    quick = "--quick" in sys.argv
    tts = Synthesizer(threads=1)
    stt = Recognizer(cpu_threads=2)  # its default prompt is used for the plain sentences
    cases = CASES[::2] if quick else CASES
    speech = [
        audio.to_float32_16k(
            audio.encode_pcm16((tts.synthesize_all(t) * 0.6).astype(np.int16), "audio/pcm"), "audio/pcm"
        )
        for t, _, _ in cases
    ]
    plain = [
        audio.to_float32_16k(
            audio.encode_pcm16((tts.synthesize_all(t) * 0.6).astype(np.int16), "audio/pcm"), "audio/pcm"
        )
        for t, _ in PLAIN
    ]
    stt.transcribe(speech[0])  # warm-up
    configs = [Config("before", False, False), Config("after", True, True)]
    prompts = {kind: question_prompt(kind) for kind in PARAMS}
    for kind, prompt in prompts.items():
        print(f"prompt after the {kind} question: {prompt!r}")
    policies = {c.name: DialoguePolicy(spoken_digits=c.spoken_digits) for c in configs}
    exact = {c.name: dict.fromkeys(PARAMS, 0) for c in configs}
    kept = dict.fromkeys(policies, 0)
    rtfs: dict[str, list[float]] = {c.name: [] for c in configs}
    lines: dict[str, list[str]] = {c.name: [] for c in configs}
    # the two configurations take turns on each utterance, so a busy machine slows both alike
    for (said, kind, expected), f16 in zip(cases, speech, strict=True):
        for cfg in configs:
            heard = stt.transcribe(f16, prompt=prompts[kind] if cfg.biased else "")
            rtfs[cfg.name].append(heard.seconds / heard.audio_seconds)
            got = extract(policies[cfg.name], kind, heard.text)
            exact[cfg.name][kind] += got == expected
            mark = "ok  " if got == expected else "MISS"
            lines[cfg.name].append(f"  {mark} {said!r}\n       heard {heard.text!r} -> {got!r}")
    for (said, keys), f16 in zip(PLAIN, plain, strict=True):
        for cfg in configs:
            heard = stt.transcribe(f16, prompt=stt.prompt if cfg.biased else "")
            rtfs[cfg.name].append(heard.seconds / heard.audio_seconds)
            good = all(k in words(heard.text) for k in keys)
            kept[cfg.name] += good
            if not good:
                lines[cfg.name].append(f"  PLAIN MISS {said!r} heard {heard.text!r}")
    counts = {k: sum(1 for _, kind, _ in cases if kind == k) for k in PARAMS}
    results: dict[str, dict[str, float]] = {}
    for cfg in configs:
        got = exact[cfg.name]
        total = sum(got.values())
        print(f"== {cfg.name}: question-biased prompt={cfg.biased} spoken_digits={cfg.spoken_digits}")
        print("\n".join(lines[cfg.name]))
        print(
            f"  exact {total}/{len(cases)} (phone {got['phone']}/{counts['phone']}, date "
            f"{got['date']}/{counts['date']}, order {got['order']}/{counts['order']}); plain "
            f"sentences intact {kept[cfg.name]}/{len(PLAIN)}; STT RTF median {statistics.median(rtfs[cfg.name]):.3f}"
        )
        results[cfg.name] = {
            "exact": total / len(cases),
            "phone": got["phone"] / counts["phone"],
            "plain": kept[cfg.name] / len(PLAIN),
            "rtf": statistics.median(rtfs[cfg.name]),
        }
    b, a = results["before"], results["after"]
    print(
        f"RESULT digits_exact_before={b['exact']:.3f} digits_exact_after={a['exact']:.3f} "
        f"phone_exact_before={b['phone']:.3f} phone_exact_after={a['phone']:.3f} "
        f"plain_intact_before={b['plain']:.3f} plain_intact_after={a['plain']:.3f} "
        f"stt_rtf_before={b['rtf']:.3f} stt_rtf={a['rtf']:.3f}"
    )


if __name__ == "__main__":
    main()
