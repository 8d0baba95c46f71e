/* One call for a supervisor: the timeline, live figures, and the supervisor's actions.
   Resumes after a disconnect with ?last_seq=N: the server sends what came after N, then deltas. */
"use strict";

(function () {
  const {el, money, latency, tickDurations, socket, showState} = window.Dash;
  const app = document.getElementById("call-app");
  const timelineNode = document.getElementById("timeline");
  const approvalsNode = document.getElementById("approvals");
  const resultNode = document.getElementById("action-result");
  let lastSeq = Number(app.dataset.lastSeq || 0);
  let row = JSON.parse(document.getElementById("call-row").textContent);
  const entries = new Map(); // key -> entry (transcript items and tool calls are updated in place)
  const order = [];          // entries in timeline order
  const usage = new Map();   // agent -> {input, cached, output}

  for (const tr of document.querySelectorAll("#usage-table tbody tr[data-agent]")) {
    const cells = tr.querySelectorAll("td.num");
    usage.set(tr.dataset.agent, {input: +cells[0].textContent, cached: +cells[1].textContent, output: +cells[2].textContent});
  }

  // --- rendering -----------------------------------------------------------------------------------

  const DONE = {approve: "approved", deny: "denied", whisper: "whispered to the agent",
                say: "spoke to the caller", hangup: "hung up", listen: "listened in", listen_stop: "stopped listening",
                take_over: "took the call over", hand_back: "handed the call back to the agent"};
  const pretty = (value) => JSON.stringify(value, null, 2);
  const silentSeconds = (ms) => Math.round(Math.max(0, Number(ms) || 0) / 1000);
  const crumb = (cls, icon, head, body) => el("li", {class: `crumb ${cls}`},
    el("div", {class: "crumb-head"}, el("span", {class: "icon", "aria-hidden": "true", text: icon}), ...head),
    body ? el("p", {text: body}) : null);

  function render(e) {
    switch (e.type) {
      case "transcript": {
        const who = e.role === "user" ? "Caller" : e.role === "assistant" ? `Agent · ${e.agent}`
          : e.role === "human" ? "Human agent" : e.role;
        return el("li", {class: `turn turn-${e.role}`},
          el("div", {class: "who"}, who, e.truncated ? el("span", {class: "tag", text: "cut off"}) : null),
          el("p", {class: "text", text: e.text || "(no words)"}));
      }
      case "tool": {
        const meta = [e.agent, e.duration_ms != null ? `${e.duration_ms} ms` : "",
                      e.approved_by ? `approved/denied by ${e.approved_by}` : ""].filter(Boolean).join(" · ");
        const outcome = e.error ? el("pre", {class: "error", text: e.error})
          : e.result != null ? el("pre", {text: pretty(e.result)}) : null;
        const node = el("li", {class: `crumb crumb-tool status-${e.status}`},
          el("div", {class: "crumb-head"}, el("span", {class: "icon", "aria-hidden": "true", text: "⚙"}),
             " Tool ", el("strong", {text: e.name}), " ",
             el("span", {class: `badge tool-${e.status}`, text: e.status.replace("_", " ")}), " ",
             el("span", {class: "meta", text: meta})),
          el("details", {open: e.status === "awaiting_approval"}, el("summary", {text: "Arguments and result"}),
             el("pre", {text: pretty(e.arguments)}), outcome));
        if (e.status === "awaiting_approval" && row.status !== "ended") node.append(approvalButtons(e));
        return node;
      }
      case "handoff":
        return crumb("crumb-handoff", "⇄", [" Handoff ", el("strong", {text: `${e.from_agent} → ${e.to_agent}`}),
          e.fallback ? el("span", {class: "badge warn", text: "fallback"}) : null, " ",
          el("span", {class: "meta", text: `depth ${e.depth}`})], e.reason);
      case "handoff_applied":
        if (e.applied) {
          return el("li", {class: "crumb crumb-minor", text: `· Agent ${e.to_agent} in force after ${e.applied_ms} ms`});
        }
        return crumb("crumb-guardrail", "⚠", [" Handoff to ", el("strong", {text: e.to_agent}), " not applied by the server"],
          e.error);
      case "guardrail":
        return crumb("crumb-guardrail", "⚠", [" Guardrail ", el("strong", {text: e.category}), " ",
          el("span", {class: "meta", text: e.action})], e.text);
      case "escalation":
        return crumb("crumb-escalation", "↑", [" Escalation ", el("strong", {text: e.source}), " ",
          el("span", {class: "meta", text: `webhook ${e.webhook_status}`})], e.reason);
      case "escalation_status":
        return el("li", {class: "crumb crumb-minor", text: `· Escalation webhook ${e.webhook_status}` +
          (e.webhook_response_code ? ` (HTTP ${e.webhook_response_code})` : "") + `, attempt ${e.attempts}`});
      case "supervisor":
        return crumb("crumb-supervisor", "☎", [" Supervisor ", el("strong", {text: e.by}), ` ${DONE[e.action] || e.action}`,
          e.tool_call_id ? el("span", {class: "meta", text: ` ${e.tool_call_id}`}) : null], e.text);
      case "summary":
        return crumb("crumb-summary", "≡", [" Summary ", el("span", {class: "meta",
          text: e.kind + (e.disposition ? ` · ${e.disposition}` : "")})], e.text);
      case "caller.idle":
        return crumb("crumb-idle", "…", [" Caller silent for ", el("strong", {text: `${silentSeconds(e.ms)} s`}), " ",
          el("span", {class: "meta", text: `agent ${e.agent || "—"}`})]);
      case "session":
        return el("li", {class: "crumb crumb-minor",
          text: `· Session ${e.index} ${e.state}${e.end_reason ? ": " + e.end_reason : ""} (${e.model})`});
      case "call_started":
        return el("li", {class: "crumb crumb-minor", text: `· Call started (${e.channel}, ${e.scenario}, agent ${e.agent})`});
      case "call_answered":
        return el("li", {class: "crumb crumb-minor", text: "· Call answered"});
      case "call_ended":
        return el("li", {class: "crumb crumb-ended", text: `■ Call ended: ${e.reason}`});
      case "queue":
        return el("li", {class: "crumb crumb-escalation", text: `⏳ Queue: ${e.status}${e.by ? " by " + e.by : ""}` +
          ` (after ${e.wait_ms} ms${e.status === "timed_out" ? ", then " + e.fallback : ""})`});
      case "voicemail":
        return el("li", {class: "crumb crumb-minor", text: `✉ Voicemail of ${e.duration_ms} ms (on the queue page)`});
      default:
        return null;
    }
  }

  function approvalButtons(e) {
    return el("div", {class: "approve-row"},
      el("button", {type: "button", class: "primary small", text: "Approve",
        onclick: () => act("approve", {tool_call_id: e.tool_call_id})}),
      el("button", {type: "button", class: "danger small", text: "Deny",
        onclick: () => act("deny", {tool_call_id: e.tool_call_id})}));
  }

  function keyOf(e) {
    if (e.type === "transcript") return `item:${e.item_id}`;
    if (e.type === "tool" && e.tool_call_id) return `tool:${e.tool_call_id}`;
    return null;
  }

  function add(e) {
    const key = keyOf(e);
    const known = key && entries.get(key);
    if (known) Object.assign(known.event, e);
    const entry = known || {event: {...e}, node: null};
    const node = render(entry.event);
    if (!node) return;
    if (entry.node) entry.node.replaceWith(node);
    else timelineNode.append(node);
    entry.node = node;
    if (!known) { order.push(entry); if (key) entries.set(key, entry); }
  }

  function renderApprovals() {
    const waiting = order.filter((x) => x.event.type === "tool" && x.event.status === "awaiting_approval");
    if (row.status === "ended" || !waiting.length) { approvalsNode.replaceChildren(); return; }
    approvalsNode.replaceChildren(el("h3", {text: "Waiting for your approval"}), ...waiting.map((x) =>
      el("div", {class: "approval"},
        el("p", {}, el("strong", {text: x.event.name}), ` (${x.event.agent})`),
        el("pre", {text: pretty(x.event.arguments)}), approvalButtons(x.event))));
  }

  function renderFigures() {
    const status = document.getElementById("call-status");
    status.textContent = row.status;
    status.className = `badge status-${row.status}`;
    document.getElementById("stat-agent").textContent = row.agent || "—";
    document.getElementById("stat-cost").textContent = money(row.cost, row.local);
    document.getElementById("stat-latency").textContent = latency(row);
    document.getElementById("stat-idle").textContent = String(row.idle_prompts || 0);
    document.getElementById("stat-ended").textContent = row.end_reason || "—";
    const duration = document.getElementById("stat-duration");
    duration.dataset.ended = row.ended_at || "";
    const body = document.querySelector("#usage-table tbody");
    if (usage.size) body.replaceChildren(...[...usage.entries()].sort().map(([agent, u]) =>
      el("tr", {dataset: {agent}}, el("td", {text: agent}), el("td", {class: "num", text: u.input}),
         el("td", {class: "num", text: u.cached}), el("td", {class: "num", text: u.output}))));
    const ended = row.status === "ended";
    for (const control of document.querySelectorAll(".supervise textarea, .supervise button")) control.disabled = ended;
    tickDurations(app);
  }

  /** An event changes the call's figures as the server's row would. */
  function applyToRow(e) {
    if (e.type === "handoff") row.agent = e.to_agent;
    else if (e.type === "usage") {
      row.cost = e.call_cost;
      row.local = e.call_local;
      const u = usage.get(e.agent) || {input: 0, cached: 0, output: 0};
      u.input += e.usage.input_tokens || 0;
      u.output += e.usage.output_tokens || 0;
      u.cached += (e.usage.text_in_cached || 0) + (e.usage.audio_in_cached || 0);
      usage.set(e.agent, u);
    } else if (e.type === "latency") { row.latency_p50_ms = e.p50_ms; row.latency_p95_ms = e.p95_ms; }
    else if (e.type === "caller.idle") row.idle_prompts = e.idle_prompts;
    else if (e.type === "call_answered") row.status = "active";
    else if (e.type === "call_ended") { row.status = "ended"; row.end_reason = e.reason; row.ended_at = e.at; row.cost = e.cost; }
  }

  function receiveEvent(seq, e) {
    if (seq <= lastSeq) return; // already shown (the page or an earlier snapshot had it)
    lastSeq = seq;
    app.dataset.lastSeq = String(seq);
    document.getElementById("timeline-empty")?.remove();
    applyToRow(e);
    add(e);
    if (e.type === "supervisor") {
      const audit = document.getElementById("audit");
      audit.querySelector(".empty")?.remove();
      audit.prepend(el("li", {}, el("strong", {text: e.by}), ` ${DONE[e.action] || e.action}`, e.text ? `: “${e.text.slice(0, 80)}”` : ""));
    }
  }

  // --- actions -------------------------------------------------------------------------------------

  let requests = 0;
  function act(action, fields) {
    if (action === "hangup" && !confirm("Hang up this call for the caller?")) return;
    const sent = sock.send({type: "action", action, request_id: ++requests, ...fields});
    resultNode.textContent = sent ? `Sending ${action}…` : "Not connected: try again in a moment.";
    resultNode.dataset.ok = sent ? "pending" : "false";
  }

  for (const form of document.querySelectorAll(".action-form")) {
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const text = form.elements.text.value.trim();
      if (!text) return;
      act(form.dataset.action, {text});
      form.elements.text.value = "";
    });
  }
  document.getElementById("hangup").addEventListener("click", () => act("hangup", {}));

  // --- start ---------------------------------------------------------------------------------------

  timelineNode.replaceChildren();
  const initial = JSON.parse(document.getElementById("call-entries").textContent);
  if (!initial.length) timelineNode.append(el("li", {class: "empty", id: "timeline-empty", text: "Nothing said yet."}));
  for (const e of initial) add(e);
  renderApprovals();
  renderFigures();

  const sock = socket({
    url: () => `${app.dataset.wsPath}?last_seq=${lastSeq}`,
    onState: (state, detail) => showState(document.getElementById("live-state"), state, detail),
    onMessage(message) {
      if (message.type === "snapshot") {
        for (const item of message.events) receiveEvent(item.seq, item.event);
        row = {...row, ...message.call};
      } else if (message.type === "event") {
        receiveEvent(message.seq, message.event);
      } else if (message.type === "action_result") {
        resultNode.textContent = message.ok ? `${message.action}: ${message.detail}` : `${message.action || "Action"} failed: ${message.detail}`;
        resultNode.dataset.ok = String(message.ok);
        return;
      }
      renderApprovals();
      renderFigures();
    },
  });
  setInterval(() => { if (row.status !== "ended") tickDurations(app); }, 1000);
})();
