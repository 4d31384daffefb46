"use strict";
// The supervisor page's tabs beside the live floor: reports over a period,
// the users of the account, and each campaign's dial-level cap. Every
// action is checked again on the server.

async function request(path, options = {}) {
  const r = await fetch(path, {
    ...options,
    headers: { "Content-Type": "application/json", ...(options.headers || {}) },
  });
  if (r.status === 401) {
    window.location.assign("/login");
    throw new Error("logged out");
  }
  const data = r.status === 204 ? null : await r.json().catch(() => null);
  if (!r.ok) throw new Error((data && data.error) || `HTTP ${r.status}`);
  return data;
}

function td(value, className) {
  const el = document.createElement("td");
  el.textContent = value;
  if (className) el.className = className;
  return el;
}

function num(value) {
  return td(String(value), "num");
}

function duration(secs) {
  const s = Math.max(0, Math.floor(secs || 0));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const rest = String(s % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${rest}` : `${m}:${rest}`;
}

function percent(x) {
  return `${(100 * (x || 0)).toFixed(1)} %`;
}

// "Sale 2, No sale 1" from {"Sale": 2, "No sale": 1}.
function counts(map, format = String) {
  return Object.entries(map || {}).map(([k, v]) => `${k} ${format(v)}`).join(", ");
}

// Tabs.

function showTab(name) {
  for (const b of document.querySelectorAll(".tabs button")) {
    b.setAttribute("aria-selected", String(b.dataset.tab === name));
    document.getElementById(`tab-${b.dataset.tab}`).hidden = b.dataset.tab !== name;
  }
  if (name === "reports") loadReports();
  if (name === "users") loadUsers();
  if (name === "scripts") loadScripts();
  if (name === "queues") loadQueues();
  if (name === "contacts") loadContacts();
  if (name === "floor") loadDialLevels();
}

// Reports.

function reportQuery() {
  const form = document.getElementById("report-range");
  const q = new URLSearchParams();
  if (form.from.value) q.set("from", form.from.value);
  if (form.to.value) q.set("to", form.to.value);
  return q;
}

function csvLink(id, path, extra = {}) {
  const q = reportQuery();
  q.set("format", "csv");
  for (const [k, v] of Object.entries(extra)) q.set(k, v);
  document.getElementById(id).href = `${path}?${q}`;
}

async function loadReports() {
  const status = document.getElementById("report-status");
  const q = reportQuery().toString();
  try {
    const [agents, campaigns] = await Promise.all([
      request(`/api/reports/agents?${q}`),
      request(`/api/reports/campaigns?${q}`),
    ]);
    const form = document.getElementById("report-range");
    // The server's period, so the inputs show what the tables cover.
    if (!form.from.value) form.from.value = agents.from.slice(0, 10);
    if (!form.to.value) {
      const last = new Date(Date.parse(agents.to) - 1);
      form.to.value = last.toISOString().slice(0, 10);
    }
    document.getElementById("report-zone").textContent =
      `Days and hours in ${agents.time_zone}: the account has no time zone of its own.`;
    showAgentReport(agents.agents);
    showCampaignReport(campaigns.campaigns);
    csvLink("agents-csv", "/api/reports/agents");
    csvLink("campaigns-csv", "/api/reports/campaigns");
    csvLink("hours-csv", "/api/reports/campaigns", { by: "hour" });
    status.textContent = "";
  } catch (e) {
    status.textContent = e.message;
  }
}

function showAgentReport(agents) {
  document.querySelector("#agent-report tbody").replaceChildren(...agents.map((a) => {
    const tr = document.createElement("tr");
    tr.dataset.userId = a.user_id;
    tr.append(td(a.username), num(a.calls_handled), num(duration(a.talk_secs)),
      num(duration(a.wrap_up_secs)), num(duration(a.ready_secs)), num(duration(a.pause_secs)),
      td(counts(a.pause_by_code, duration)), td(counts(a.dispositions)));
    return tr;
  }));
}

function showCampaignReport(campaigns) {
  document.querySelector("#campaign-report tbody").replaceChildren(...campaigns.map((c) => {
    const tr = document.createElement("tr");
    tr.dataset.campaignId = c.campaign_id;
    tr.append(td(c.name), num(c.attempts), num(c.answered), num(c.abandoned),
      num(percent(c.abandon_rate)), td(counts(c.outcomes)), td(counts(c.dispositions)));
    return tr;
  }));
  const hours = campaigns.flatMap((c) => c.hours.map((h) => ({ name: c.name, ...h })));
  document.querySelector("#hour-report tbody").replaceChildren(...hours.map((h) => {
    const tr = document.createElement("tr");
    tr.append(td(h.name), td(h.hour.slice(0, 16).replace("T", " ")), num(h.attempts),
      num(h.answered), num(h.abandoned), num(percent(h.abandon_rate)));
    return tr;
  }));
}

// Users.

let me = null;

async function loadUsers() {
  const status = document.getElementById("user-status");
  try {
    const [account, users] = await Promise.all([request("/api/account"), request("/api/users")]);
    const active = users.filter((u) => u.role === "agent" && u.active).length;
    document.getElementById("seats").textContent =
      `${active} of ${account.seats} agent seats taken by active agents; ` +
      `${account.agents_logged_in} agents logged in.`;
    document.querySelector("#user-list tbody").replaceChildren(...users.map((u) => {
      const tr = document.createElement("tr");
      tr.dataset.username = u.username;
      tr.dataset.active = String(u.active);
      const action = document.createElement("td");
      const mayManage = me && (me.role === "admin" || u.role === "agent") && u.id !== me.id;
      if (mayManage) {
        const b = document.createElement("button");
        b.type = "button";
        b.textContent = u.active ? "Deactivate" : "Reactivate";
        b.addEventListener("click", () => setActive(u, !u.active));
        action.append(b);
      }
      tr.append(td(u.username), td(u.role), td(u.active ? "yes" : "no"), action);
      return tr;
    }));
  } catch (e) {
    status.textContent = e.message;
  }
}

async function setActive(user, active) {
  const status = document.getElementById("user-status");
  try {
    await request(`/api/users/${user.id}/active`, { method: "POST", body: JSON.stringify({ active }) });
    status.textContent = `${user.username} ${active ? "reactivated" : "deactivated"}.`;
  } catch (e) {
    status.textContent = e.message;
  }
  loadUsers();
}

async function addUser(ev) {
  ev.preventDefault();
  const form = ev.target;
  const status = document.getElementById("user-status");
  try {
    const user = await request("/api/users", {
      method: "POST",
      body: JSON.stringify({
        username: form.username.value,
        password: form.password.value,
        role: form.role.value,
      }),
    });
    status.textContent = `${user.username} added.`;
    form.reset();
  } catch (e) {
    status.textContent = e.message;
  }
  loadUsers();
}

// Dial level.

async function loadDialLevels() {
  const status = document.getElementById("dial-level-status");
  try {
    const campaigns = await request("/api/campaigns");
    const rows = await Promise.all(campaigns.map(async (c) => {
      const settings = await request(`/api/campaigns/${c.id}/settings`);
      const tr = document.createElement("tr");
      tr.dataset.campaignId = c.id;
      const input = document.createElement("input");
      input.type = "number";
      input.min = "1";
      input.max = "20";
      input.step = "0.1";
      input.value = settings.max_dial_level;
      input.disabled = settings.mode !== "predictive";
      const set = document.createElement("button");
      set.type = "button";
      set.textContent = "Set";
      set.disabled = input.disabled;
      set.addEventListener("click", () => setDialLevel(c, input.value));
      const cellWith = document.createElement("td");
      cellWith.append(input, " ", set);
      // Preview calls are placed by an agent who is already listening.
      const screen = document.createElement("input");
      screen.type = "checkbox";
      screen.className = "screen-machines";
      screen.checked = settings.detect_machines;
      screen.disabled = settings.mode === "preview";
      screen.setAttribute("aria-label", `Screen ${c.name}'s calls for answering machines`);
      screen.addEventListener("change", () => setScreening(c, screen));
      const screenCell = document.createElement("td");
      screenCell.append(screen);
      tr.append(td(c.name), td(settings.mode), cellWith, screenCell);
      return tr;
    }));
    document.querySelector("#dial-levels tbody").replaceChildren(...rows);
  } catch (e) {
    status.textContent = e.message;
  }
}

async function setDialLevel(campaign, value) {
  const status = document.getElementById("dial-level-status");
  try {
    const saved = await request(`/api/campaigns/${campaign.id}/dial-level`, {
      method: "PUT",
      body: JSON.stringify({ max_dial_level: Number(value) }),
    });
    status.textContent = `${campaign.name}: at most ${saved.max_dial_level} lines per agent.`;
  } catch (e) {
    status.textContent = e.message;
  }
}

async function setScreening(campaign, box) {
  const status = document.getElementById("dial-level-status");
  box.disabled = true;
  try {
    const settings = await request(`/api/campaigns/${campaign.id}/settings`);
    settings.detect_machines = box.checked;
    const saved = await request(`/api/campaigns/${campaign.id}/settings`, {
      method: "PUT",
      body: JSON.stringify(settings),
    });
    box.checked = saved.detect_machines;
    status.textContent = `${campaign.name}: answering machines ${
      saved.detect_machines ? "screened out" : "not screened"} from the campaign's next start.`;
  } catch (e) {
    box.checked = !box.checked;
    status.textContent = e.message;
  } finally {
    box.disabled = false;
  }
}

async function start() {
  for (const b of document.querySelectorAll(".tabs button")) {
    b.addEventListener("click", () => showTab(b.dataset.tab));
  }
  document.getElementById("report-range").addEventListener("submit", (ev) => {
    ev.preventDefault();
    loadReports();
  });
  document.getElementById("new-user").addEventListener("submit", addUser);
  me = await request("/api/me");
  if (me.role === "admin") {
    const select = document.querySelector("#new-user select[name=role]");
    for (const role of ["supervisor", "admin"]) {
      const option = document.createElement("option");
      option.value = role;
      option.textContent = role;
      select.append(option);
    }
  }
  loadDialLevels();
}

start().catch((e) => console.error(e));
