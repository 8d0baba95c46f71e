/* The live calls list: a snapshot, then one row update per change published by calls.actions. */
"use strict";

(function () {
  const {el, money, clock, latency, tickDurations, socket, showState} = window.Dash;
  const app = document.getElementById("dashboard-app");
  const liveBody = document.querySelector("#live-calls tbody");
  const recentBody = document.querySelector("#recent-calls tbody");
  const RECENT_MAX = 25;
  const rows = new Map(); // call id -> newest row (by seq)

  const callLink = (row) => el("a", {href: `${app.dataset.callUrl}${row.id}/`, text: `#${row.id}`});

  function liveRow(row) {
    const attention = row.pending_approvals
      ? el("a", {class: "badge attention", href: `${app.dataset.callUrl}${row.id}/`,
                 text: `${row.pending_approvals} awaiting approval`})
      : "";
    return el("tr", {dataset: {call: row.id, seq: row.seq}},
      el("td", {}, callLink(row)),
      el("td", {}, el("span", {class: `badge status-${row.status}`, text: row.status})),
      el("td", {text: row.scenario || "—"}), el("td", {text: row.channel}),
      el("td", {text: row.caller_id || "—"}), el("td", {text: row.agent || "—"}),
      el("td", {class: "num", dataset: {started: row.started_at}}),
      el("td", {class: "num", text: money(row.cost, row.local)}),
      el("td", {class: "num", text: latency(row)}),
      el("td", {class: "num idle", text: String(row.idle_prompts || 0)}),
      el("td", {}, attention));
  }

  function recentRow(row) {
    return el("tr", {dataset: {call: row.id, seq: row.seq}},
      el("td", {}, callLink(row)),
      el("td", {text: row.scenario || "—"}), el("td", {text: row.channel}),
      el("td", {text: row.caller_id || "—"}), el("td", {text: row.agent || "—"}),
      el("td", {text: clock(row.ended_at), title: row.ended_at || ""}),
      el("td", {class: "num", dataset: {started: row.started_at, ended: row.ended_at || ""}}),
      el("td", {text: row.end_reason || "—"}),
      el("td", {class: "num", text: money(row.cost, row.local)}));
  }

  function render() {
    const all = [...rows.values()];
    const live = all.filter((r) => r.status !== "ended").sort((a, b) => a.started_at.localeCompare(b.started_at));
    const ended = all.filter((r) => r.status === "ended")
      .sort((a, b) => (b.ended_at || "").localeCompare(a.ended_at || "")).slice(0, RECENT_MAX);
    liveBody.replaceChildren(...live.map(liveRow));
    recentBody.replaceChildren(...ended.map(recentRow));
    document.getElementById("live-count").textContent = live.length;
    document.getElementById("live-empty").hidden = live.length > 0;
    document.getElementById("recent-empty").hidden = ended.length > 0;
    tickDurations(app);
  }

  function accept(row) {
    const known = rows.get(row.id);
    if (known && known.seq > row.seq) return false; // an older change overtaken by a newer one
    rows.set(row.id, row);
    return true;
  }

  function snapshot(data) {
    rows.clear();
    for (const row of [...data.live, ...data.recent]) accept(row);
    render();
  }

  snapshot(JSON.parse(document.getElementById("dashboard-snapshot").textContent));
  socket({
    url: () => app.dataset.wsPath,
    onState: (state, detail) => showState(document.getElementById("live-state"), state, detail),
    onMessage(message) {
      if (message.type === "snapshot") snapshot(message);
      else if (message.type === "call" && accept(message.call)) {
        render();
        if (message.change === "call_started") {
          const tr = liveBody.querySelector(`tr[data-call="${message.call.id}"]`);
          if (tr) tr.classList.add("fresh");
        }
      }
    },
  });
  setInterval(() => tickDurations(liveBody), 1000);
})();
