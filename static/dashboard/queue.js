/* The queue of human agents: the waiting calls with their wait times (polled every second, the
   seconds counted up in between), the human agent's availability, and Accept (the first wins;
   the winner goes to the call's page to take it over). */
"use strict";

(function () {
  const app = document.getElementById("queue-app");
  if (!app) return;
  const body = document.querySelector("#waiting tbody");
  const empty = document.getElementById("waiting-empty");
  const count = document.getElementById("waiting-count");
  const result = document.getElementById("queue-result");
  const available = document.getElementById("available");
  const callbacks = document.getElementById("callbacks");
  const csrf = app.querySelector("input[name=csrfmiddlewaretoken]").value;
  let state = JSON.parse(document.getElementById("queue-state").textContent);
  let fetchedAt = Date.now();

  function cell(text, cls) {
    const td = document.createElement("td");
    td.textContent = text;
    if (cls) td.className = cls;
    return td;
  }

  function waitText(seconds) {
    const s = Math.max(0, Math.round(seconds));
    return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`;
  }

  function render() {
    const elapsed = (Date.now() - fetchedAt) / 1000;
    body.replaceChildren();
    for (const entry of state.waiting) {
      const tr = document.createElement("tr");
      tr.dataset.entry = entry.entry_id;
      tr.append(cell(`#${entry.call_id}`), cell(entry.caller_id), cell(entry.reason),
        cell(waitText(entry.waited_s + elapsed), "num wait"),
        cell(`${entry.fallback} after ${waitText(entry.timeout_s)}`, "num"));
      const td = document.createElement("td");
      if (state.human_agent) {
        const button = document.createElement("button");
        button.type = "button";
        button.className = "primary accept";
        button.textContent = "Accept";
        button.disabled = !state.available;
        button.addEventListener("click", () => accept(entry.entry_id));
        td.append(button);
      }
      tr.append(td);
      body.append(tr);
    }
    count.textContent = state.waiting.length;
    empty.hidden = state.waiting.length > 0;
    callbacks.replaceChildren(...state.callbacks.map((c) => {
      const li = document.createElement("li");
      li.textContent = `Call #${c.call_id}: call back ${c.caller_id}${c.reason ? ` (${c.reason})` : ""}`;
      return li;
    }));
    const voicemails = document.getElementById("voicemails");
    const shown = new Set(Array.from(voicemails.children, (li) => li.dataset.voicemail));
    for (const v of state.voicemails || []) {
      if (shown.has(String(v.voicemail_id))) continue; // keep a player that is playing
      const li = document.createElement("li");
      li.dataset.voicemail = v.voicemail_id;
      const audio = document.createElement("audio");
      audio.controls = true;
      audio.preload = "none";
      audio.src = v.url;
      li.append(`Call #${v.call_id} from ${v.caller_id} (${Math.round(v.duration_ms / 1000)} s) `, audio);
      voicemails.prepend(li);
    }
    if (available) available.checked = state.available;
  }

  async function post(url, data) {
    const response = await fetch(url, {
      method: "POST", credentials: "same-origin", headers: {"X-CSRFToken": csrf},
      body: new URLSearchParams(data || {}),
    });
    return [response.ok, await response.json()];
  }

  async function refresh() {
    try {
      const response = await fetch(app.dataset.stateUrl, {credentials: "same-origin"});
      if (response.ok) {
        state = await response.json();
        fetchedAt = Date.now();
      }
    } catch (err) {
      result.textContent = `Could not refresh the queue (${err})`;
    }
    render();
  }

  async function accept(entryId) {
    const [ok, data] = await post(`${app.dataset.acceptUrl}${entryId}/accept/`);
    if (ok) window.location.href = data.call_url;
    else { result.textContent = data.error; refresh(); }
  }

  if (available) {
    available.addEventListener("change", async () => {
      const [ok, data] = await post(app.dataset.availabilityUrl, {available: available.checked ? "1" : "0"});
      if (ok) { state = data; fetchedAt = Date.now(); render(); } else result.textContent = data.error;
    });
  }
  render();
  setInterval(refresh, 1000);
})();
