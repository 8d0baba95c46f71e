"""A deterministic dialogue policy: the "model" of the offline engine.

One module per part: ``items`` (the conversation and tools it reads, the response it gives),
``vocabulary`` (stop words, synonyms and concept groups from ``vocabulary.json``, plus a scenario's
own phrases), ``intent`` (which tool the words ask for), ``arguments`` (values from the caller's
words by schema: numbers, dates, phone numbers, patterns, enums, free text; which tools change
data), ``wording`` (what the agent says), ``summaries`` (text-mode summaries) and ``dialogue``
(the policy itself).

It sees only what the real API sees: the session's ``instructions``, its function ``tools`` (GA
shape: ``{"type": "function", "name", "description", "parameters"}``) and the conversation (GA
conversation items: messages with input_text / input_audio / output_text / output_audio parts,
``function_call`` and ``function_call_output``). It returns the next response: spoken text, a
function call, or both (text said before the call). No randomness, no clocks, no set-order
dependence: the same input gives the same output, every time.

How it decides:

- **Greeting**: with nothing said yet (or only "hello"), it greets as the instructions say: a
  quoted line containing a greeting, else a sentence telling it how to greet, else a short generic
  greeting naming the role found in "You are ...".
- **Silence**: a user turn with nothing in it (the idle timeout's committed silence, or speech
  nobody understood) is answered, whatever the tool choice, without a tool: "Are you still
  there?" and the last question asked again (else "I'm here whenever you're ready.").
- **Tool choice**: the caller's words are matched (stemmed, through the vocabulary, idf-weighted) against
  tool names (weight 3), descriptions (1.5) and parameter names/descriptions/enums (0.5). A strong
  match on the latest utterance wins; otherwise the task in progress (the best tool not yet done
  for what the caller said since the last "anything else?") continues. ``transfer_to_*`` tools are
  ordinary tools, so handoffs happen by voice. A verification tool (verify/authenticate) comes
  first when another tool is wanted and nobody has been verified yet; a tool whose output can
  provide a missing argument ("order_id" <- ``lookup_orders``) is called before the tool needing it.
  A tool with a free-text ``question``/``query`` parameter (``ask_supervisor``) takes what nothing
  else matches.
- **Arguments** come from the caller's words guided by the schema (enum synonyms, dates, phone
  numbers incl. spoken digits, patterns such as ``^ORD-\\d{5}$``, numbers, yes/no, free text),
  then from earlier call arguments with the same name, then from tool outputs. Missing required
  ones are asked for using the parameter descriptions (typed ones together, free text one at a
  time, so an answer is bound to the question); answers are collected across turns, and a
  question missed again is asked in other words.
- **Safe failover**: a tool that changes something (create, place, book, cancel, block, start,
  update, delete...) runs only on typed values (enum, pattern, date, number...) or values the
  caller confirmed: short free-text values are read back first, and after a "no" only fresh
  answers count.
- **Tool outputs** become a spoken answer (a message/answer field, else a compact readout), and the
  task continues with the next matching tool (verify -> transfer, lookup -> check -> start).
- **Handoffs**: after a ``transfer_to_*`` call and its output the session's instructions and tools
  are the new agent's; it does not greet but acts on the caller's pending request.

:meth:`DialoguePolicy.respond_responses` is the same policy over Responses API input items (text
mode, used by the supervisor and summaries); :meth:`PolicyResponse.responses_output` gives the
Responses ``output`` items.
"""

from realtime.offline.policy.arguments import changes_data
from realtime.offline.policy.dialogue import DialoguePolicy
from realtime.offline.policy.intent import STRONG, WEAK
from realtime.offline.policy.items import (
    TRANSFER_PREFIX,
    FunctionCall,
    PolicyResponse,
    _content_text,
    parse_items,
    parse_tools,
)
from realtime.offline.policy.summaries import summarize
from realtime.offline.policy.vocabulary import expand, scenario_phrases, tokens
from realtime.offline.policy.wording import (
    ANYTHING_ELSE,
    GOODBYE,
    STILL_THERE,
    asked_parameters,
    describe_output,
    greeting,
    still_there,
    verbatim_request,
)

__all__ = [
    "ANYTHING_ELSE",
    "GOODBYE",
    "STILL_THERE",
    "STRONG",
    "TRANSFER_PREFIX",
    "WEAK",
    "DialoguePolicy",
    "FunctionCall",
    "PolicyResponse",
    "_content_text",
    "asked_parameters",
    "changes_data",
    "describe_output",
    "expand",
    "greeting",
    "parse_items",
    "parse_tools",
    "scenario_phrases",
    "still_there",
    "summarize",
    "tokens",
    "verbatim_request",
]
