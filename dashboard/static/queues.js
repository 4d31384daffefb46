"use strict";
// The supervisor's inbound queues: the account's queues with their numbers,
// campaign and agents; a form to create one or change its settings and
// numbers; its agents with their skills; and today's figures per queue.
// Names and numbers are the account's own text: they go into the page as
// text, never as markup. The server checks every action again.

const queuePage = { wired: false, editing: null, members: [], campaigns: [], users: [] };

const DAYS = [
  ["mon", "Monday"], ["tue", "Tuesday"], ["wed", "Wednesday"], ["thu", "Thursday"],
  ["fri", "Friday"], ["sat", "Saturday"], ["sun", "Sunday"],
];

function queueStatus(message, isError = false) {
  const el = document.getElementById("queue-status");
  el.textContent = message;
  el.classList.toggle("error", isError);
}

function queueField(name) {
  return document.getElementById("queue-form").elements.namedItem(name);
}

async function loadQueues() {
  if (!queuePage.wired) wireQueues();
  let queues;
  try {
    const [found, campaigns, users] = await Promise.all([
      request("/api/queues"), request("/api/campaigns"), request("/api/users"),
    ]);
    queues = found;
    queuePage.campaigns = campaigns;
    queuePage.users = users;
    fillCampaigns();
    const agents = await Promise.all(queues.map((q) => request(`/api/queues/${q.id}/agents`)));
    showQueueList(queues, agents.map((a) => a.agents.length));
  } catch (e) {
    forgetQueues();
    queueStatus(e.message, true);
    return;
  }
  if (queuePage.editing && !queues.some((q) => q.id === queuePage.editing.id)) newQueue();
  document.getElementById("queue-none").hidden = queues.length > 0;
  if (document.getElementById("queue-status").classList.contains("error")) queueStatus("");
  await loadQueueReport(queues);
}

// A refusal leaves nothing of an earlier answer on screen.
function forgetQueues() {
  queuePage.campaigns = [];
  queuePage.users = [];
  queuePage.members = [];
  newQueue();
  queueField("campaign_id").replaceChildren();
  for (const id of ["queue-list", "queue-report", "queue-agents"]) {
    document.querySelector(`#${id} tbody`).replaceChildren();
  }
  document.getElementById("queue-agent-pick").replaceChildren();
  for (const id of ["queue-report-period", "queue-agents-name", "queue-delete-question"]) {
    document.getElementById(id).textContent = "";
  }
  document.getElementById("queue-none").hidden = true;
}

function wireQueues() {
  queuePage.wired = true;
  const hours = document.getElementById("queue-hours");
  for (const [key, day] of DAYS) hours.append(dayEditor(key, day));
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  document.getElementById("queue-time-zones").replaceChildren(...zones.map((z) => new Option(z)));
  document.getElementById("queue-form").addEventListener("submit", saveQueue);
  document.getElementById("queue-new").addEventListener("click", () => {
    newQueue();
    queueField("name").focus();
  });
  document.getElementById("queue-delete").addEventListener("click", askToDelete);
  // The dialog's form says which button closed it as it submits.
  document.querySelector("#queue-delete-dialog form").addEventListener("submit", (ev) => {
    if (ev.submitter && ev.submitter.value === "delete") deleteQueue();
  });
  document.getElementById("queue-agent-add").addEventListener("click", addMember);
  document.getElementById("queue-agents-save").addEventListener("click", saveMembers);
  newQueue();
}

// The list.

function showQueueList(queues, agentCounts) {
  const campaignName = new Map(queuePage.campaigns.map((c) => [c.id, c.name]));
  document.querySelector("#queue-list tbody").replaceChildren(...queues.map((q, i) => {
    const tr = document.createElement("tr");
    tr.dataset.queueId = q.id;
    const open = openNow(q);
    const edit = document.createElement("button");
    edit.type = "button";
    edit.textContent = "Edit";
    edit.setAttribute("aria-label", `Edit ${q.name}`);
    edit.addEventListener("click", () => editQueue(q.id));
    const action = document.createElement("td");
    action.append(edit);
    tr.append(td(q.name), td(q.numbers.join(", ")),
      td(campaignName.get(q.campaign_id) || `#${q.campaign_id}`),
      td(open === null ? "unknown" : open ? "open" : "closed"), num(agentCounts[i]), action);
    return tr;
  }));
}

// Whether the queue's hours hold now in its zone, by this computer's clock:
// the rule the service routes by (from the opening time, up to the closing).
function openNow(queue) {
  try {
    const parts = new Intl.DateTimeFormat("en-GB", {
      timeZone: queue.time_zone, weekday: "short", hour: "2-digit", minute: "2-digit",
      second: "2-digit", hourCycle: "h23",
    }).formatToParts(new Date());
    const part = (type) => (parts.find((p) => p.type === type) || {}).value || "";
    const day = queue.opening_hours[part("weekday").slice(0, 3).toLowerCase()];
    const now = `${part("hour")}:${part("minute")}:${part("second")}`;
    return Boolean(day) && day.start <= now && now < day.end;
  } catch (e) {
    return null;
  }
}

// The form.

function dayEditor(key, day) {
  const row = document.createElement("div");
  row.className = "queue-day";
  const open = document.createElement("input");
  open.type = "checkbox";
  open.name = `open-${key}`;
  const openLabel = document.createElement("label");
  openLabel.className = "inline";
  openLabel.append(open, ` ${day}`);
  const times = ["start", "end"].map((which) => {
    const input = document.createElement("input");
    input.type = "time";
    input.name = `${which}-${key}`;
    input.setAttribute("aria-label", `${day} ${which === "start" ? "opens at" : "closes at"}`);
    const label = document.createElement("label");
    label.className = "inline";
    label.append(which === "start" ? "from " : "to ", input);
    return label;
  });
  open.addEventListener("change", () => dayOpen(key, open.checked));
  row.append(openLabel, ...times);
  return row;
}

function dayOpen(key, open) {
  queueField(`open-${key}`).checked = open;
  for (const which of ["start", "end"]) {
    const input = queueField(`${which}-${key}`);
    input.disabled = !open;
    input.required = open;
  }
}

// "09:00:00" for a time input, which shows minutes unless there are seconds.
function timeValue(t) {
  return t.endsWith(":00") ? t.slice(0, 5) : t;
}

function fillCampaigns() {
  const select = queueField("campaign_id");
  const wanted = select.value;
  select.replaceChildren(...queuePage.campaigns.map((c) => new Option(c.name, c.id)));
  if (queuePage.campaigns.some((c) => String(c.id) === wanted)) select.value = wanted;
}

function showQueueForm(q) {
  const form = document.getElementById("queue-form");
  queueField("name").value = q.name || "";
  queueField("name").readOnly = Boolean(q.id);
  if (q.campaign_id) queueField("campaign_id").value = String(q.campaign_id);
  queueField("numbers").value = (q.numbers || []).join("\n");
  for (const key of ["time_zone", "max_wait_secs", "overflow", "service_level_pct",
    "service_level_secs", "ring_secs", "priority"]) {
    queueField(key).value = String(q[key]);
  }
  queueField("record_calls").checked = q.record_calls;
  for (const key of ["welcome_message", "hold_music", "closed_message", "voicemail_message"]) {
    queueField(key).value = q[key] || "";
  }
  for (const [key] of DAYS) {
    const day = q.opening_hours[key];
    dayOpen(key, Boolean(day));
    queueField(`start-${key}`).value = day ? timeValue(day.start) : "";
    queueField(`end-${key}`).value = day ? timeValue(day.end) : "";
  }
  document.getElementById("queue-form-title").textContent = q.id ? `Edit ${q.name}` : "New queue";
  document.getElementById("queue-save").textContent = q.id ? "Save" : "Create";
  document.getElementById("queue-delete").hidden = !q.id;
  form.dataset.queueId = q.id || "";
}

function newQueue() {
  queuePage.editing = null;
  const day = { start: "08:00:00", end: "21:00:00" };
  showQueueForm({
    numbers: [], time_zone: "Europe/London", max_wait_secs: 120, overflow: "voicemail",
    service_level_pct: 80, service_level_secs: 20, ring_secs: 15, priority: 0, record_calls: false,
    opening_hours: Object.fromEntries(DAYS.map(([key]) => [key, day])),
  });
  document.getElementById("queue-agents-section").hidden = true;
}

async function editQueue(id) {
  try {
    const q = await request(`/api/queues/${id}`);
    queuePage.editing = q;
    showQueueForm(q);
    document.getElementById("queue-form-title").focus();
    await loadMembers();
  } catch (e) {
    queueStatus(e.message, true);
  }
}

function numbersOf(text) {
  return text.split(/[\s,;]+/).filter(Boolean);
}

function hoursOf() {
  return Object.fromEntries(DAYS.map(([key]) => {
    if (!queueField(`open-${key}`).checked) return [key, null];
    const seconds = (t) => (t.length === 5 ? `${t}:00` : t);
    return [key, {
      start: seconds(queueField(`start-${key}`).value),
      end: seconds(queueField(`end-${key}`).value),
    }];
  }));
}

function queueBody() {
  const path = (key) => queueField(key).value.trim() || null;
  return {
    campaign_id: Number(queueField("campaign_id").value),
    numbers: numbersOf(queueField("numbers").value),
    priority: Number(queueField("priority").value),
    opening_hours: hoursOf(),
    time_zone: queueField("time_zone").value.trim(),
    welcome_message: path("welcome_message"),
    hold_music: path("hold_music"),
    closed_message: path("closed_message"),
    voicemail_message: path("voicemail_message"),
    max_wait_secs: Number(queueField("max_wait_secs").value),
    overflow: queueField("overflow").value,
    service_level_secs: Number(queueField("service_level_secs").value),
    service_level_pct: Number(queueField("service_level_pct").value),
    record_calls: queueField("record_calls").checked,
    ring_secs: Number(queueField("ring_secs").value),
  };
}

async function saveQueue(ev) {
  ev.preventDefault();
  const body = queueBody();
  try {
    let saved;
    if (queuePage.editing) {
      saved = await request(`/api/queues/${queuePage.editing.id}`, {
        method: "PATCH",
        body: JSON.stringify(body),
      });
      queueStatus(`${saved.name} saved.`);
    } else {
      body.name = queueField("name").value.trim();
      saved = await request("/api/queues", { method: "POST", body: JSON.stringify(body) });
      queueStatus(`${saved.name} created: choose its agents below.`);
    }
    queuePage.editing = saved;
    showQueueForm(saved);
    await loadQueues();
    await loadMembers();
  } catch (e) {
    queueStatus(e.message, true);
  }
}

function askToDelete() {
  const q = queuePage.editing;
  if (!q) return;
  document.getElementById("queue-delete-question").textContent =
    `Delete the queue ${q.name}? Its numbers stop reaching agents; its calls keep their history.`;
  document.getElementById("queue-delete-dialog").showModal();
}

async function deleteQueue() {
  const q = queuePage.editing;
  if (!q) return;
  try {
    await request(`/api/queues/${q.id}`, { method: "DELETE" });
    queueStatus(`${q.name} deleted.`);
    newQueue();
    await loadQueues();
    document.getElementById("queue-new").focus();
  } catch (e) {
    queueStatus(e.message, true);
  }
}

// The agents of the queue being edited.

async function loadMembers() {
  const q = queuePage.editing;
  const section = document.getElementById("queue-agents-section");
  if (!q) {
    section.hidden = true;
    return;
  }
  try {
    const [members, assigned] = await Promise.all([
      request(`/api/queues/${q.id}/agents`),
      request(`/api/campaigns/${q.campaign_id}/agents`),
    ]);
    queuePage.members = members.agents;
    document.getElementById("queue-agents-name").textContent = q.name;
    const onCampaign = new Set(assigned.user_ids);
    const campaign = queuePage.campaigns.find((c) => c.id === q.campaign_id);
    const agents = queuePage.users.filter((u) => u.role === "agent" && u.active);
    document.getElementById("queue-agent-pick").replaceChildren(...agents.map((u) => {
      const on = onCampaign.has(u.id);
      const option = new Option(on ? u.username : `${u.username} (not in ${campaign ? campaign.name : "the campaign"})`, u.id);
      option.disabled = !on;
      return option;
    }));
    showMembers();
    section.hidden = false;
  } catch (e) {
    section.hidden = true;
    queueStatus(e.message, true);
  }
}

function showMembers() {
  document.querySelector("#queue-agents tbody").replaceChildren(...queuePage.members.map((m) => {
    const tr = document.createElement("tr");
    tr.dataset.userId = m.user_id;
    const skill = document.createElement("input");
    skill.type = "number";
    skill.min = "1";
    skill.max = "10";
    skill.step = "1";
    skill.value = String(m.skill);
    skill.setAttribute("aria-label", `Skill of ${m.username}`);
    skill.addEventListener("change", () => { m.skill = Number(skill.value); });
    const skillCell = document.createElement("td");
    skillCell.append(skill);
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "Remove";
    remove.setAttribute("aria-label", `Remove ${m.username}`);
    remove.addEventListener("click", () => {
      queuePage.members = queuePage.members.filter((x) => x !== m);
      showMembers();
      document.getElementById("queue-agent-pick").focus();
    });
    const removeCell = document.createElement("td");
    removeCell.append(remove);
    tr.append(td(m.username), skillCell, removeCell);
    return tr;
  }));
}

function addMember() {
  const pick = document.getElementById("queue-agent-pick");
  const option = pick.selectedOptions[0];
  if (!option || option.disabled) {
    queueStatus("Choose an agent assigned to the queue's campaign.", true);
    return;
  }
  const skill = Number(document.getElementById("queue-agent-skill").value);
  const user = queuePage.users.find((u) => String(u.id) === option.value);
  const known = queuePage.members.find((m) => String(m.user_id) === option.value);
  if (known) known.skill = skill;
  else queuePage.members.push({ user_id: user.id, username: user.username, skill });
  showMembers();
  queueStatus(`${user.username} added with skill ${skill}: save the agents to keep it.`);
}

async function saveMembers() {
  const q = queuePage.editing;
  try {
    const saved = await request(`/api/queues/${q.id}/agents`, {
      method: "PUT",
      body: JSON.stringify({
        agents: queuePage.members.map((m) => ({ user_id: m.user_id, skill: m.skill })),
      }),
    });
    queuePage.members = saved.agents;
    showMembers();
    const n = saved.agents.length;
    queueStatus(`${q.name}: ${n} agent${n === 1 ? "" : "s"} saved.`);
    await loadQueues();
  } catch (e) {
    queueStatus(e.message, true);
  }
}

// Today's figures.

async function loadQueueReport(queues) {
  try {
    const report = await request("/api/reports/queues");
    const stamp = (t) => t.slice(0, 16).replace("T", " ");
    document.getElementById("queue-report-period").textContent =
      `From ${stamp(report.from)} to ${stamp(report.to)} ${report.time_zone}.`;
    document.getElementById("queue-report-csv").href =
      `/api/reports/queues?${new URLSearchParams({ from: report.from, to: report.to, format: "csv" })}`;
    const byId = new Map(queues.map((q) => [q.id, q]));
    document.querySelector("#queue-report tbody").replaceChildren(...report.queues.map((r) => {
      const q = byId.get(r.queue_id);
      const tr = document.createElement("tr");
      tr.dataset.queueId = r.queue_id;
      tr.append(td(r.name), num(r.offered), num(r.answered), num(r.abandoned),
        num(percent(r.service_level)),
        td(q ? `${q.service_level_pct} % in ${q.service_level_secs} s` : ""),
        num(duration(r.average_speed_of_answer_secs)), num(duration(r.longest_wait_secs)));
      return tr;
    }));
  } catch (e) {
    document.querySelector("#queue-report tbody").replaceChildren();
    queueStatus(e.message, true);
  }
}
