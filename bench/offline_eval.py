"""The offline agent on scenarios it was not tuned on, by text and by voice.

    python -m bench.offline_eval                      # held-out set, text and voice
    python -m bench.offline_eval --mode text          # text only (seconds)
    python -m bench.offline_eval --set dev --mode voice --limit 4

Each case of a set (``bench/eval_sets/<set>/*.json``, see the held-out README) is played once per
phrasing: a simulated caller opens with the phrasing, answers the agent's questions from the case's
facts (a fact is said when the question holds one of its cues; asked which task it wants, it says
its need again), says yes to a read-back that holds what it said (its free-text words; its date,
identifiers, options and numbers where they are read back) and no otherwise, and ends the call
when asked "anything else?" or after ``MAX_TURNS`` turns. The simulated caller knows nothing of the engine; tools return the scenario's
canned outputs.

A task succeeds when the expected tool is called with the expected arguments (typed values exactly;
free text by its content words). A wrong data-changing call is a call of a tool that is not
read-only (``get_``/``check_``/``list_``/``track_``...) other than the expected call with the
expected arguments. Turns are the caller's turns until success.

By voice each caller turn is synthesised (piper, and espeak-ng in several voices and speeds),
made phone-band (8 kHz mu-law) with added noise, decoded, and recognised by the engine's recogniser
with the prompt and the answer check the engine builds from the agent's pending question; the
policy sees the transcript. Voices rotate over the phrasings, so each phrasing is heard in one voice.

The last line: ``RESULT <set>_text_success=... <set>_text_wrong_calls=... <set>_text_turns=...
<set>_voice_success=... ...``.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import subprocess
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from realtime import audio
from realtime.offline.hints import answer_check, recognition_prompt
from realtime.offline.policy import DialoguePolicy
from realtime.offline.policy.arguments import find_dates

SETS = Path(__file__).parent / "eval_sets"
MAX_TURNS = 8
MAX_CHAIN = 4
READ_ONLY = re.compile(r"^(get|check|list|track|look_?up|find|search|show|describe|verify)_", re.IGNORECASE)
CONFIRM = re.compile(r"\b(shall i|should i|is that (right|correct)|do you want me to|can i go ahead|go ahead)\b", re.IGNORECASE)
CLOSING = "No, that's all. Thank you, goodbye."
CHOICE = re.compile(r"\b(what would you like to do|which you need|say just one of these|what can i help you with|how can i help)\b", re.IGNORECASE)
"""The agent asks which task the caller wants: the caller says its need again (it does not read
the options' names off, nor answers a detail because the options happen to name it)."""
VOICES: list[tuple[str, str, int]] = [
    ("piper", "", 0),
    ("espeak-ng", "en-us", 165),
    ("espeak-ng", "en+m3", 185),
    ("espeak-ng", "en-gb+f2", 150),
    ("espeak-ng", "en-us+m5", 200),
]
"""(engine, voice, words per minute): piper's bundled voice, then espeak-ng variants and speeds."""
NOISE_SNR_DB = 25.0


@dataclass
class Case:
    scenario: str
    instructions: str
    tools: list[dict[str, Any]]
    outputs: dict[str, Any]
    phrasing: str
    facts: list[dict[str, Any]]
    expect: dict[str, Any]


@dataclass
class Outcome:
    success: bool = False
    wrong_calls: int = 0
    turns: int = 0
    log: list[str] = field(default_factory=list)


def load(set_name: str, phrasings: int = 0) -> list[Case]:
    """Every (case, phrasing) of a set; ``phrasings`` > 0: only the first so many of each case."""
    cases = []
    for path in sorted((SETS / set_name).glob("*.json")):
        sc = json.loads(path.read_text())
        for case in sc["cases"]:
            for phrasing in case["phrasings"][: phrasings or None]:
                cases.append(Case(path.stem, sc["instructions"], sc["tools"], sc.get("outputs", {}), phrasing, case["facts"], case["expect"]))
    return cases


def _words(text: str) -> set[str]:
    return set(re.findall(r"[a-z0-9]+", text.lower()))


def _schema(case: Case, tool: str, arg: str) -> dict[str, Any]:
    for t in case.tools:
        if t["name"] == tool:
            return dict(t["parameters"]["properties"].get(arg, {}))
    return {}


def _free_text(schema: dict[str, Any]) -> bool:
    return schema.get("type", "string") == "string" and not ({"enum", "pattern", "format"} & set(schema))


def _number_words(text: str) -> str:
    from realtime.offline.policy import arguments as entities

    return entities.normalize_numbers(text)


def matches(case: Case, name: str, args: dict[str, Any]) -> bool:
    if name != case.expect["tool"]:
        return False
    for key, want in case.expect["arguments"].items():
        got = args.get(key)
        if _free_text(_schema(case, name, key)) and isinstance(want, str):
            if not isinstance(got, str) or not _words(_number_words(want)) <= _words(_number_words(got)):
                return False
        elif got != want:
            return False
    return True


def caller_reply(case: Case, agent: str, opened: int) -> str | None:
    """What the simulated caller says to ``agent`` (None: hangs up)."""
    low = agent.lower()
    last = " ".join(re.split(r"(?<=[.!?])\s+", agent.strip())[-2:]).lower()
    if "anything else" in low or "goodbye" in low:
        return None
    if CONFIRM.search(last) and last.rstrip().endswith("?"):
        # a read-back: yes if every free-text value it should hold is there
        for key, want in case.expect["arguments"].items():
            schema = _schema(case, case.expect["tool"], key)
            free = _free_text(schema) and isinstance(want, str)
            if free and not _words(_number_words(want)) <= _words(_number_words(agent)):
                return "No, that's not right."
            # an identifier or number read back without the caller's digits is corrected (and one
            # with letters without its letters too: "AR2055" for "KR2055")
            if not free and isinstance(want, str) and re.sub(r"\D", "", want) and (schema.get("pattern") or schema.get("format") != "date"):
                digits = re.sub(r"\D", "", _number_words(agent))
                whole = re.sub(r"[^A-Za-z0-9]", "", want).upper() in re.sub(r"[^A-Za-z0-9]", "", agent).upper()
                if not whole and (re.search(r"[A-Za-z]", want) or re.sub(r"\D", "", want) not in digits):
                    return "No, that's not right."
            # a typed value read back as another option or number than the caller's is corrected
            if "read that back" in low and not free and _spoken_other(schema, want, agent):
                return "No, that's not right."
            # a date read back that is not the caller's (a misheard year) is corrected too
            if schema.get("format") in ("date", "date-time") and isinstance(want, str):
                heard = [d for d, _ in find_dates(_number_words(agent))]
                if heard and want[:10] not in heard:
                    return "No, that's not right."
        return "Yes, please go ahead."
    if CHOICE.search(last):
        return case.phrasing if opened < 2 else "I told you, " + case.phrasing[0].lower() + case.phrasing[1:]
    said = [f["say"] for f in case.facts if any(cue in last for cue in f["cues"])]
    if said:
        return " ".join(dict.fromkeys(said))
    return case.phrasing if opened < 2 else "I told you, " + case.phrasing[0].lower() + case.phrasing[1:]


def _spoken_other(schema: dict[str, Any], want: Any, agent: str) -> bool:
    """Whether a read-back gives a typed value other than ``want``: another of the enum's options
    (and not ``want``), or for a number, numbers that do not include it."""
    low = " " + re.sub(r"[^a-z0-9]+", " ", _number_words(agent).lower()) + " "

    def said(value: Any) -> bool:
        return f" {re.sub(r'[^a-z0-9]+', ' ', str(value).lower()).strip()} " in low

    options = schema.get("enum")
    if isinstance(options, list) and options:
        return not said(want) and any(said(o) for o in options if o != want)
    if isinstance(want, (int, float)) and not isinstance(want, bool):
        numbers = re.findall(r"\b\d+(?:\.\d+)?\b", low)
        return bool(numbers) and not said(want)
    return False


def message(role: str, text: str) -> dict[str, Any]:
    kind = "input_text" if role == "user" else "output_text"
    return {"type": "message", "role": role, "content": [{"type": kind, "text": text}]}


def run_case(case: Case, policy: DialoguePolicy, hear: Any = None) -> Outcome:
    """One call; ``hear(text, items) -> transcript`` turns the caller's words into what the engine
    recognises (None: by text)."""
    out = Outcome()
    items: list[dict[str, Any]] = []
    greeting = policy.respond(case.instructions, case.tools, items)
    items.append(message("assistant", greeting.text))
    reply: str | None = case.phrasing
    opened = 1
    while reply is not None and out.turns < MAX_TURNS:
        out.turns += 1
        heard = hear(reply, items) if hear is not None else reply
        out.log.append(f"caller: {reply}" + (f"  [heard: {heard}]" if heard != reply else ""))
        items.append(message("user", heard))
        agent_said = []
        for _ in range(MAX_CHAIN):
            resp = policy.respond(case.instructions, case.tools, items)
            if resp.text:
                items.append(message("assistant", resp.text))
                agent_said.append(resp.text)
                out.log.append(f"agent: {resp.text}")
            fc = resp.function_call
            if fc is None:
                break
            out.log.append(f"CALL {fc.name} {fc.arguments_json}")
            items.append({"type": "function_call", "name": fc.name, "arguments": fc.arguments_json, "call_id": fc.call_id})
            if matches(case, fc.name, fc.arguments):
                out.success = True
            elif not READ_ONLY.match(fc.name) and not fc.name.startswith("transfer_to_"):
                out.wrong_calls += 1
                out.log.append("  ^ WRONG data-changing call")
            output = case.outputs.get(fc.name, {"ok": True})
            items.append({"type": "function_call_output", "call_id": fc.call_id, "output": json.dumps(output)})
        if out.success:
            break
        text = " ".join(agent_said)
        reply = caller_reply(case, text, opened)
        if reply == case.phrasing:
            opened += 1
    return out


# --- voice ----------------------------------------------------------------------------------------


class Voices:
    """Caller speech as a phone would carry it: 8 kHz mu-law with noise, back as 16 kHz float."""

    def __init__(self) -> None:
        from realtime.offline.tts import Synthesizer

        self.piper = Synthesizer(threads=1)
        self.rng = np.random.default_rng(12)

    def pcm8k(self, text: str, voice: tuple[str, str, int]) -> np.ndarray:
        engine, name, wpm = voice
        if engine == "piper":
            pcm24 = (self.piper.synthesize_all(text) * 0.6).astype(np.int16)
            return audio.resample(pcm24, 24000, 8000)
        with tempfile.NamedTemporaryFile(suffix=".wav") as wav:
            subprocess.run(["espeak-ng", "-v", name, "-s", str(wpm), "-w", wav.name, text], check=True, capture_output=True)
            pcm, rate = audio.read_wav(wav.name)
        return audio.resample(pcm, rate, 8000)

    def phone_band(self, text: str, voice: tuple[str, str, int], seed: int | None = None) -> np.ndarray:
        """``seed``: the noise's (None: the next of the set's own generator)."""
        pcm = self.pcm8k(text, voice).astype(np.float64)
        rng = self.rng if seed is None else np.random.default_rng(seed)
        silence = np.zeros(2400)  # 300 ms either side, noise over all of it
        pcm = np.concatenate([silence, pcm, silence])
        power = float(np.mean(pcm[pcm != 0] ** 2)) if np.any(pcm) else 1.0
        noise = rng.normal(0.0, np.sqrt(power / 10 ** (NOISE_SNR_DB / 10)), pcm.size)
        pcm16 = np.clip(pcm + noise, -32768, 32767).astype(np.int16)
        mulaw = audio.ulaw_encode(pcm16)
        return audio.to_float32_16k(mulaw, "audio/pcmu")


def voice_available() -> bool:
    return shutil.which("espeak-ng") is not None


def evaluate(cases: list[Case], mode: str, verbose: bool) -> dict[str, float]:
    policy = DialoguePolicy()
    hear = None
    if mode == "voice":
        from realtime.offline.stt import Recognizer

        voices = Voices()
        recognizer = Recognizer(cpu_threads=2)
        state: dict[str, Any] = {"voice": VOICES[0], "case": 0, "turn": 0}

        def hear(text: str, items: list[dict[str, Any]], case: Case | None = None) -> str:
            # the noise is drawn for this case's turn: a run is repeatable, and a change to the
            # engine that alters one call does not change the noise of every call after it
            state["turn"] += 1
            seed = zlib.crc32(f"{state['case']}:{state['turn']}:{text}".encode())
            samples = voices.phone_band(text, state["voice"], seed)
            prompt = recognition_prompt(current.instructions, current.tools, items)
            accept = answer_check(current.instructions, current.tools, items)
            return str(recognizer.transcribe(samples, prompt=prompt, accept=accept).text)

    outcomes = []
    for index, current in enumerate(cases):
        if mode == "voice":
            state.update(voice=VOICES[index % len(VOICES)], case=index, turn=0)
        outcome = run_case(current, policy, hear)
        outcomes.append(outcome)
        label = f"{mode} {current.scenario}: {current.phrasing!r}"
        if mode == "voice":
            label += f" [{state['voice'][0]} {state['voice'][1]} {state['voice'][2] or ''}]".rstrip()
        status = "ok  " if outcome.success else "FAIL"
        print(f"{status} {label} turns={outcome.turns} wrong_calls={outcome.wrong_calls}", flush=True)
        if verbose or not outcome.success or outcome.wrong_calls:
            print("      " + "\n      ".join(outcome.log))
    ok = [o for o in outcomes if o.success]
    return {
        "success": len(ok) / max(len(outcomes), 1),
        "wrong_calls": float(sum(o.wrong_calls for o in outcomes)),
        "turns": statistics.mean(o.turns for o in ok) if ok else 0.0,
        "tasks": float(len(outcomes)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--set", default="heldout", choices=sorted(p.name for p in SETS.iterdir() if p.is_dir()))
    parser.add_argument("--mode", default="both", choices=["text", "voice", "both"])
    parser.add_argument("--limit", type=int, default=0, help="only the first N tasks (a slice while developing)")
    parser.add_argument("--phrasings", type=int, default=0, help="only the first N phrasings of each case (0: all)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args()
    cases = load(args.set, args.phrasings)
    if args.limit:
        cases = cases[: args.limit]
    modes = ["text", "voice"] if args.mode == "both" else [args.mode]
    if "voice" in modes and not voice_available():
        raise SystemExit("espeak-ng is missing: run scripts/ensure-speech-tools.sh (or --mode text)")
    results = {}
    for mode in modes:
        results[mode] = evaluate(cases, mode, args.verbose)
        r = results[mode]
        print(f"== {args.set} {mode}: success {r['success']:.0%} of {int(r['tasks'])}, wrong data-changing calls {int(r['wrong_calls'])}, turns per successful task {r['turns']:.2f}")
    fields = " ".join(
        f"{args.set}_{mode}_success={r['success']:.3f} {args.set}_{mode}_wrong_calls={int(r['wrong_calls'])} {args.set}_{mode}_turns={r['turns']:.2f}"
        for mode, r in results.items()
    )
    print(f"RESULT {fields} tasks={len(cases)}")


if __name__ == "__main__":
    main()
