"use strict";
// The live wallboard: a snapshot, then numbered events from /api/stream.
// On a dropped connection it reconnects with ?since= so nothing is missed.

const board = {
  seq: 0, agents: new Map(), calls: new Map(), campaigns: new Map(), names: new Map(), campaignNames: new Map(),
  trunks: new Map(), queues: new Map(), queueNames: new Map(),
};
// How states read on the board; the wire keeps its snake_case names.
const WORDS = { in_call: "in call", wrap_up: "wrap-up", logged_out: "logged out", voicemail: "leaving voicemail" };
function words(state) {
  return WORDS[state] || state;
}
function campaignName(id) {
  if (id === null || id === undefined) return "";
  return board.campaignNames.get(id) || `#${id}`;
}
const perMinute = new Map(); // minute -> {calls, answered, abandoned}

function cell(value) {
  const td = document.createElement("td");
  td.textContent = value;
  return td;
}

function since(iso) {
  const s = Math.max(0, Math.floor((Date.now() - Date.parse(iso)) / 1000));
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, "0")}`;
}

function pct(x) {
  return `${(100 * (x || 0)).toFixed(1)} %`;
}

function bucket(at) {
  const minute = Math.floor(Date.parse(at) / 60000);
  if (!perMinute.has(minute)) perMinute.set(minute, { calls: 0, answered: 0, abandoned: 0 });
  return perMinute.get(minute);
}

function apply(ev) {
  switch (ev.kind) {
    case "agent_state":
      board.names.set(ev.user_id, ev.username);
      if (ev.state === "logged_out") board.agents.delete(ev.user_id);
      else board.agents.set(ev.user_id, { username: ev.username, state: ev.state, pause_code: ev.pause_code, since: ev.at });
      break;
    case "call_state": {
      const known = board.calls.get(ev.call_ref);
      if (ev.state === "dialling" && !known) bucket(ev.at).calls += 1;
      if (ev.state === "answered") bucket(ev.at).answered += 1;
      if (ev.state === "abandoned") bucket(ev.at).abandoned += 1;
      if (ev.state === "ended") board.calls.delete(ev.call_ref);
      else board.calls.set(ev.call_ref, {
        campaign_id: ev.campaign_id,
        state: ev.state,
        // A message being left has no agent on it any more.
        agent: ev.state === "voicemail" ? null : ev.agent ?? (known && known.agent),
        started: known ? known.started : ev.at,
      });
      break;
    }
    case "campaign_figures":
      // A campaign created since the names were read: read them again.
      if (!board.campaignNames.has(ev.campaign_id)
        && ![...board.campaigns.values()].some((f) => f.campaign_id === ev.campaign_id)) {
        showCampaignControls().catch((e) => console.error(e));
      }
      // One entry per node dialling the campaign; the table adds them up.
      board.campaigns.set(`${ev.campaign_id}/${ev.node || ""}`,
        { ...ev.figures, campaign_id: ev.campaign_id, node: ev.node || "", at: ev.at });
      break;
    case "trunk_state": {
      const key = `${ev.node}/${ev.trunk}`;
      const known = board.trunks.get(key);
      if (!known || known.up !== ev.up) board.trunks.set(key, { node: ev.node, trunk: ev.trunk, up: ev.up, since: ev.at });
      break;
    }
    case "queue_status":
      if (!board.queueNames.has(ev.queue_id)) loadQueueNames().catch((e) => console.error(e));
      board.queues.set(`${ev.queue_id}/${ev.node}`, {
        queue_id: ev.queue_id, node: ev.node, waiting: ev.waiting,
        longest_wait_secs: ev.longest_wait_secs, agents_free: ev.agents_free,
        service_level: ev.service_level, at: ev.at,
      });
      break;
    case "contact_edited":
      // The Contacts tab reads an open contact again (contacts.js).
      document.dispatchEvent(new CustomEvent("dialcrm:contact-edited", { detail: ev }));
      break;
    case "alert": {
      const li = document.createElement("li");
      li.textContent = `${new Date(ev.at).toLocaleTimeString()} — ${ev.message}`;
      document.getElementById("alerts").prepend(li);
      break;
    }
  }
}

function loadSnapshot(s) {
  board.agents.clear();
  board.calls.clear();
  board.campaigns.clear();
  for (const a of s.agents) {
    board.names.set(a.user_id, a.username);
    board.agents.set(a.user_id, { username: a.username, state: a.state, pause_code: a.pause_code, since: a.since });
  }
  for (const c of s.calls) board.calls.set(c.call_ref, c);
  for (const c of s.campaigns) board.campaigns.set(`${c.campaign_id}/${c.node || ""}`, c);
  board.trunks.clear();
  for (const t of s.trunks || []) board.trunks.set(`${t.node}/${t.trunk}`, t);
  board.queues.clear();
  for (const q of s.queues || []) board.queues.set(`${q.queue_id}/${q.node}`, q);
}

// The account's queue names, for the tiles.
let queueNamesAt = 0;
async function loadQueueNames() {
  // A queue deleted since still reports for a moment: ask at most every 10 s.
  if (Date.now() - queueNamesAt < 10000) return;
  queueNamesAt = Date.now();
  const res = await fetch("/api/queues", { credentials: "same-origin" });
  if (!res.ok) return;
  for (const q of await res.json()) board.queueNames.set(q.id, q.name);
}

// One tile per queue, its nodes added up: callers waiting, the longest
// wait (counting on from its report), agents free. Amber while anyone waits.
function renderQueues() {
  const byQueue = new Map();
  for (const q of board.queues.values()) {
    const t = byQueue.get(q.queue_id) || { waiting: 0, agents_free: 0, longest: 0, level: null, levelAt: 0 };
    t.waiting += q.waiting;
    t.agents_free += q.agents_free;
    // Every node reads the same figure from the database: the newest stands.
    if (q.service_level !== null && q.service_level !== undefined && Date.parse(q.at) >= t.levelAt) {
      t.level = q.service_level;
      t.levelAt = Date.parse(q.at);
    }
    if (q.waiting > 0) {
      const grown = q.longest_wait_secs + Math.max(0, (Date.now() - Date.parse(q.at)) / 1000);
      t.longest = Math.max(t.longest, grown);
    }
    byQueue.set(q.queue_id, t);
  }
  if (byQueue.size === 0) return;
  const ids = [...byQueue.keys()].sort((a, b) => a - b);
  document.getElementById("queues").replaceChildren(...ids.map((id) => {
    const t = byQueue.get(id);
    const li = document.createElement("li");
    li.dataset.queue = String(id);
    li.dataset.waiting = String(t.waiting);
    const name = document.createElement("strong");
    name.textContent = board.queueNames.get(id) || `Queue #${id}`;
    const figures = document.createElement("small");
    const s = Math.floor(t.longest);
    const longest = t.waiting ? `, longest ${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}` : "";
    const level = t.level === null ? "" : `; ${pct(t.level)} in target today`;
    figures.textContent = `${t.waiting} waiting${longest}; ${t.agents_free} agents free${level}`;
    li.append(name, figures);
    return li;
  }));
}

function render() {
  const agents = [...board.agents.values()].sort((a, b) => a.username.localeCompare(b.username));
  document.querySelector("#agents tbody").replaceChildren(...agents.map((a) => {
    const tr = document.createElement("tr");
    tr.dataset.state = a.state;
    const state = a.pause_code ? `${words(a.state)} (${a.pause_code})` : words(a.state);
    tr.append(cell(a.username), cell(state), cell(since(a.since)));
    return tr;
  }));
  document.querySelector("#calls tbody").replaceChildren(...[...board.calls.entries()].map(([ref, c]) => {
    const tr = document.createElement("tr");
    tr.dataset.callRef = ref;
    tr.dataset.state = c.state;
    let agent = c.agent ? board.names.get(c.agent) || `#${c.agent}` : "";
    // A call this page took over is the supervisor's now; its agent has left it.
    if (typeof listening === "object" && listening.call === ref && listening.mode === "takeover") {
      agent = `you (taken over from ${agent || "the agent"})`;
    }
    tr.append(cell(ref.slice(0, 8)), cell(campaignName(c.campaign_id)), cell(words(c.state)), cell(agent),
      cell(since(c.started)),
      listenCell(ref, c));
    return tr;
  }));
  document.querySelector("#figures tbody").replaceChildren(...[...campaignFigures()].map(([id, f]) => {
    const tr = document.createElement("tr");
    tr.append(cell(campaignName(id)), cell(f.lines_in_use), cell(f.agents_ready), cell(f.agents_in_call),
      cell(f.dialled), cell(f.answered), cell(pct(f.abandon_rate_24h)), cell(pct(f.abandon_rate_30d)),
      cell(f.abandons_allowed ?? ""), cell((f.dial_level || 0).toFixed(2)));
    return tr;
  }));
  renderTrunks();
  renderQueues();
  drawChart();
}

// Each campaign's figures, its nodes added up: lines, agents and calls are
// each node's own; the abandon figures (from the database) are everyone's,
// so the newest report's stand. A node whose report is 10 s older than the
// campaign's newest has stopped dialling it and no longer counts.
function campaignFigures() {
  const byCampaign = new Map();
  for (const f of board.campaigns.values()) {
    const list = byCampaign.get(f.campaign_id) || [];
    list.push(f);
    byCampaign.set(f.campaign_id, list);
  }
  const sum = (list, key) => list.reduce((n, f) => n + (f[key] || 0), 0);
  const out = new Map();
  for (const [id, all] of byCampaign) {
    const newest = all.reduce((a, b) => (Date.parse(b.at) > Date.parse(a.at) ? b : a));
    const live = all.filter((f) => Date.parse(newest.at) - Date.parse(f.at) <= 10000);
    const combined = { ...newest };
    for (const key of ["lines_in_use", "agents_ready", "agents_paused", "agents_in_call",
      "agents_wrap_up", "dialled", "answered"]) combined[key] = sum(live, key);
    combined.dial_level = combined.agents_ready ? combined.lines_in_use / combined.agents_ready : 0;
    out.set(id, combined);
  }
  return out;
}

// One tile per trunk: green takes calls, red gets none until it answers again.
function renderTrunks() {
  const trunks = [...board.trunks.values()].sort((a, b) => `${a.node}/${a.trunk}`.localeCompare(`${b.node}/${b.trunk}`));
  if (trunks.length === 0) return;
  const nodes = new Set(trunks.map((t) => t.node));
  document.getElementById("trunks").replaceChildren(...trunks.map((t) => {
    const li = document.createElement("li");
    li.dataset.up = String(t.up);
    li.dataset.trunk = t.trunk;
    const name = document.createElement("strong");
    name.textContent = nodes.size > 1 ? `${t.trunk} (${t.node})` : t.trunk;
    const state = document.createElement("small");
    state.textContent = `${t.up ? "up" : "down: no new calls"} for ${since(t.since)}`;
    li.append(name, state);
    return li;
  }));
}

function drawChart() {
  const canvas = document.getElementById("chart");
  const width = Math.max(240, Math.floor(canvas.clientWidth));
  if (canvas.width !== width) canvas.width = width;
  const ctx = canvas.getContext("2d");
  ctx.font = "12px system-ui, sans-serif";
  const now = Math.floor(Date.now() / 60000);
  for (const m of perMinute.keys()) if (m < now - 60) perMinute.delete(m);
  const minutes = [...Array(60).keys()].map((i) => perMinute.get(now - 59 + i) || { calls: 0, answered: 0, abandoned: 0 });
  const max = Math.max(1, ...minutes.map((m) => m.calls));
  const w = canvas.width / 60;
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  ctx.fillStyle = "#5b7bd5";
  minutes.forEach((m, i) => {
    const h = (m.calls / max) * (canvas.height - 20);
    ctx.fillRect(i * w + 1, canvas.height - h, w - 2, h);
  });
  ctx.strokeStyle = "#c0392b";
  ctx.beginPath();
  minutes.forEach((m, i) => {
    const rate = m.answered ? m.abandoned / m.answered : 0;
    const y = canvas.height - Math.min(1, rate / 0.1) * (canvas.height - 20);
    if (i === 0) ctx.moveTo(i * w + w / 2, y); else ctx.lineTo(i * w + w / 2, y);
  });
  ctx.stroke();
  ctx.fillStyle = "#1d2330";
  ctx.fillText(`calls per minute (max ${max}); red: abandon rate, top = 10 %`, 4, 12);
}

// With several nodes: whether other nodes' events reach this one (NATS).
function showShared(link, shared) {
  link.dataset.state = shared ? "live" : "cut-off";
  link.textContent = shared ? "live" : "cut off from the other nodes (NATS unreachable): this board is standing still";
}

function connect() {
  const link = document.getElementById("link");
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const query = board.seq ? `?since=${board.seq}` : "";
  const ws = new WebSocket(`${proto}://${location.host}/api/stream${query}`);
  ws.onopen = () => { link.dataset.state = "live"; link.textContent = "live"; };
  ws.onmessage = (msg) => {
    const frame = JSON.parse(msg.data);
    if (frame.type === "bus") return showShared(link, frame.shared);
    if (frame.type === "snapshot") {
      loadSnapshot(frame);
      if (frame.shared !== undefined) showShared(link, frame.shared);
    } else if (frame.type === "event") apply(frame.event);
    board.seq = frame.seq;
    render();
  };
  ws.onclose = () => {
    link.dataset.state = "down";
    link.textContent = "reconnecting…";
    setTimeout(connect, 1000);
  };
}

// Campaign and list controls. Every action is checked again on the server.

async function call(path, options = {}) {
  const r = await fetch(path, options);
  const data = r.status === 204 ? null : await r.json().catch(() => null);
  if (!r.ok) throw new Error((data && data.error) || `HTTP ${r.status}`);
  return data;
}

function button(label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.addEventListener("click", onClick);
  return b;
}

async function showCampaignControls() {
  const status = document.getElementById("import-status");
  const campaigns = await call("/api/campaigns");
  for (const c of campaigns) board.campaignNames.set(c.id, c.name);
  render();
  document.querySelector("#campaign-controls tbody").replaceChildren(...campaigns.map((c) => {
    const tr = document.createElement("tr");
    const action = c.status === "running"
      ? button("Pause", () => act(`/api/campaigns/${c.id}/pause`))
      : button("Start", () => act(`/api/campaigns/${c.id}/start`));
    const td = document.createElement("td");
    td.append(action);
    tr.append(cell(c.name), cell(c.status), td);
    return tr;
  }));
  async function act(path) {
    try {
      await call(path, { method: "POST" });
    } catch (e) {
      status.textContent = e.message;
    }
    showCampaignControls();
  }
}

async function showListControls() {
  const status = document.getElementById("import-status");
  const lists = await call("/api/lists");
  document.querySelector("#list-controls tbody").replaceChildren(...lists.map((l) => {
    const tr = document.createElement("tr");
    const link = document.createElement("a");
    link.href = `/api/lists/${l.id}/export.csv`;
    link.textContent = "CSV";
    const exportCell = document.createElement("td");
    exportCell.append(link);
    const input = document.createElement("input");
    input.type = "file";
    input.accept = ".csv,text/csv";
    input.addEventListener("change", () => upload(l, input.files[0], status));
    const importCell = document.createElement("td");
    importCell.append(input);
    tr.append(cell(l.name), cell(l.size), exportCell, importCell);
    return tr;
  }));
}

async function upload(list, file, status) {
  if (!file) return;
  status.textContent = `Uploading ${file.name}…`;
  try {
    const job = await call(`/api/lists/${list.id}/import?on_duplicate=skip`, {
      method: "POST",
      headers: { "Content-Type": "text/csv" },
      body: file,
    });
    for (;;) {
      const j = await call(job.status_url);
      const s = j.summary || {};
      status.textContent = `${list.name}: ${j.status}, ${s.rows_read ?? 0} rows read, ` +
        `${s.added_to_list ?? 0} added to the list (${s.imported ?? 0} new contacts), ` +
        `${s.skipped_duplicates ?? 0} duplicates skipped, ${s.invalid ?? 0} invalid`;
      if (j.status !== "running") break;
      await new Promise((r) => setTimeout(r, 1000));
    }
    showListControls();
  } catch (e) {
    status.textContent = e.message;
  }
}

connect();
setInterval(render, 1000);
showCampaignControls().catch((e) => console.error(e));
showListControls().catch((e) => console.error(e));
loadQueueNames().catch((e) => console.error(e));
