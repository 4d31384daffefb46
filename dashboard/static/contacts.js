"use strict";
// The supervisor's contacts: find them by name, number, email or postcode,
// a page at a time in the order chosen; open one to read its lists and its
// timeline and to correct it; create one. An edit names the version it
// read, so someone else's change since is never overwritten; an open
// contact follows the edits others make as the live stream reports them.
// A contact's values are the account's own text: they go into the page as
// text and input values, never as markup. The server checks everything.
// The form's pieces are in contact-form.js, shared with the agent's card;
// duplicates and merges are in merges.js.

const contactPage = {
  wired: false,
  query: { q: "", sort: "name", page: 1, per_page: 25 },
  // The contact card as last read, or null when none is open.
  open: null,
  // The account's field definitions, and names for the ids entries carry.
  fields: [],
  fieldsShape: "",
  lists: new Map(),
  users: new Map(),
  campaigns: new Map(),
  saving: false,
  // An edit reported while our own save was on its way.
  pending: null,
  noticeTimer: null,
};

const CONTACT_MATCHED = {
  number: "Read as a number.", name: "Read as names.", email: "Read as an email address.",
  postal_code: "Read as a postcode.", all: "Every contact.",
};

// The stream's contact_edited events, passed on by the wallboard.
document.addEventListener("dialcrm:contact-edited", (ev) => contactEditedElsewhere(ev.detail));

function contactSay(id, message, isError = false) {
  const el = document.getElementById(id);
  el.textContent = message;
  el.classList.toggle("error", isError);
}

function contactStatus(message, isError = false) {
  contactSay("contact-status", message, isError);
}

async function loadContacts() {
  if (!contactPage.wired) wireContacts();
  try {
    const [fields, lists, users, campaigns] = await Promise.all([
      contactFetch("/api/account/fields"), contactFetch("/api/lists"),
      contactFetch("/api/users"), contactFetch("/api/campaigns"),
    ]);
    contactPage.fields = fields;
    contactPage.lists = new Map(lists.map((l) => [l.id, l.name]));
    contactPage.users = new Map(users.map((u) => [u.id, u.username]));
    contactPage.campaigns = new Map(campaigns.map((c) => [c.id, c.name]));
  } catch (e) {
    forgetContacts();
    contactStatus(e.message, true);
    return;
  }
  fillNewContactForm();
  if (document.getElementById("contact-status").classList.contains("error")) contactStatus("");
  await Promise.all([searchContacts(), loadMerges()]);
}

// A refusal leaves nothing of an earlier answer on screen.
function forgetContacts() {
  closeContact();
  forgetMerges();
  contactPage.fields = [];
  contactPage.fieldsShape = "";
  contactPage.lists.clear();
  contactPage.users.clear();
  contactPage.campaigns.clear();
  document.querySelector("#contact-results tbody").replaceChildren();
  for (const id of ["contact-matched", "contact-page", "contact-new-status"]) {
    document.getElementById(id).textContent = "";
  }
  document.getElementById("contact-prev").disabled = true;
  document.getElementById("contact-next").disabled = true;
  const box = document.getElementById("contact-new-fields");
  box.replaceChildren(box.querySelector("legend"));
  box.hidden = true;
  fillListChoice([]);
}

function wireContacts() {
  contactPage.wired = true;
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  document.getElementById("contact-time-zones").replaceChildren(...zones.map((z) => new Option(z)));
  const search = document.getElementById("contact-search");
  search.addEventListener("submit", (ev) => {
    ev.preventDefault();
    contactPage.query.q = search.q.value.trim();
    contactPage.query.per_page = Number(search.per_page.value);
    contactPage.query.page = 1;
    searchContacts();
  });
  for (const b of document.querySelectorAll("#contact-results button.sort")) {
    b.addEventListener("click", () => sortContacts(b.dataset.sort));
  }
  document.getElementById("contact-prev").addEventListener("click", () => turnPage(-1));
  document.getElementById("contact-next").addEventListener("click", () => turnPage(1));
  document.getElementById("contact-form").addEventListener("submit", saveContact);
  document.getElementById("contact-reload").addEventListener("click", () => reloadContact());
  document.getElementById("contact-conflict-reload").addEventListener("click", () => reloadContact());
  document.getElementById("contact-close").addEventListener("click", () => {
    closeContact();
    document.getElementById("contact-search").q.focus();
  });
  // Escape closes the contact, but never throws away what was typed.
  document.getElementById("contact-card").addEventListener("keydown", (ev) => {
    if (ev.key !== "Escape" || ev.target.tagName === "SELECT") return;
    if (contactDirty()) {
      contactSay("contact-form-status", "Save your changes, or reload the contact to drop them, before closing it.");
      return;
    }
    closeContact();
    document.getElementById("contact-search").q.focus();
  });
  document.getElementById("contact-new").addEventListener("submit", createContact);
}

// Names for the ids the API gives.

function contactName(c) {
  return `${c.first_name || ""} ${c.last_name || ""}`.trim() || c.phone_e164;
}

function contactUser(id) {
  if (id === null || id === undefined) return "the command line";
  const wallboardNames = typeof board === "undefined" ? null : board.names;
  return contactPage.users.get(id) || (wallboardNames && wallboardNames.get(id)) || `user #${id}`;
}

function contactCampaign(id) {
  return contactPage.campaigns.get(id) || `campaign #${id}`;
}

function contactWords(names) {
  return contactFieldWords(names, contactPage.fields);
}

function contactWhen(iso) {
  return new Date(iso).toLocaleString();
}

// Search.

async function searchContacts() {
  const q = contactPage.query;
  const params = new URLSearchParams({
    q: q.q, sort: q.sort, page: String(q.page), per_page: String(q.per_page),
  });
  const tbody = document.querySelector("#contact-results tbody");
  try {
    const found = await contactFetch(`/api/contacts?${params}`);
    tbody.replaceChildren(...found.contacts.map(contactRow));
    const n = found.contacts.length;
    document.getElementById("contact-matched").textContent =
      `${CONTACT_MATCHED[found.matched_by] || ""} ${n ? "" : "No contact found."}`.trim();
    document.getElementById("contact-page").textContent =
      n ? `Page ${found.page}` : "";
    document.getElementById("contact-prev").disabled = found.page <= 1;
    document.getElementById("contact-next").disabled = !found.has_more;
    showSortOrder();
    if (document.getElementById("contact-status").classList.contains("error")) contactStatus("");
  } catch (e) {
    tbody.replaceChildren();
    document.getElementById("contact-matched").textContent = "";
    document.getElementById("contact-prev").disabled = true;
    document.getElementById("contact-next").disabled = true;
    contactStatus(e.message, true);
  }
}

function contactRow(c) {
  const tr = document.createElement("tr");
  tr.dataset.contactId = c.id;
  const open = document.createElement("button");
  open.type = "button";
  open.textContent = "Open";
  open.setAttribute("aria-label", `Open ${contactName(c)}`);
  open.addEventListener("click", () => openContact(c.id, { focus: true }));
  const action = document.createElement("td");
  action.append(open);
  const day = (t) => new Date(t).toLocaleDateString();
  tr.append(td(contactName(c)), td(c.phone_e164), td(c.email || ""), td(c.postal_address || ""),
    td(day(c.created_at)), td(day(c.updated_at)), action);
  return tr;
}

// Name, created and updated sort up, then down on a second press.
function sortContacts(key) {
  const q = contactPage.query;
  q.sort = q.sort === key ? `-${key}` : key;
  q.page = 1;
  searchContacts();
}

function showSortOrder() {
  const sort = contactPage.query.sort;
  for (const b of document.querySelectorAll("#contact-results button.sort")) {
    const key = b.dataset.sort;
    const order = sort === key ? "ascending" : sort === `-${key}` ? "descending" : "none";
    b.parentElement.setAttribute("aria-sort", order);
  }
}

function turnPage(step) {
  contactPage.query.page = Math.max(1, contactPage.query.page + step);
  searchContacts();
}

function fillListChoice(lists) {
  const select = document.getElementById("contact-new").elements.namedItem("list_id");
  const wanted = select.value;
  select.replaceChildren(new Option("no list", ""), ...lists.map(([id, name]) => new Option(name, id)));
  if (lists.some(([id]) => String(id) === wanted)) select.value = wanted;
}

// The new contact's form keeps what was typed unless the fields changed.
function fillNewContactForm() {
  fillListChoice([...contactPage.lists]);
  const shape = JSON.stringify(contactPage.fields.map((f) => [f.key, f.kind, f.label, f.choices, f.required]));
  if (shape === contactPage.fieldsShape) return;
  contactPage.fieldsShape = shape;
  const box = document.getElementById("contact-new-fields");
  box.replaceChildren(box.querySelector("legend"), ...contactPage.fields.map((f) => fieldInput(f, null)));
  box.hidden = contactPage.fields.length === 0;
}

// The open contact.

async function openContact(id, { focus = false, notice = "" } = {}) {
  try {
    const [card, timeline] = await Promise.all([
      contactFetch(`/api/contacts/${id}`), contactFetch(`/api/contacts/${id}/timeline?limit=100`),
    ]);
    contactPage.open = card;
    contactPage.pending = null;
    showContact(card, timeline);
    showNotice(notice);
    if (focus) document.getElementById("contact-title").focus();
    return true;
  } catch (e) {
    if (e.status === 404 && contactPage.open && contactPage.open.id === id) closeContact();
    contactStatus(e.status === 404 ? "That contact no longer exists." : e.message, true);
    return false;
  }
}

function reloadContact() {
  const c = contactPage.open;
  if (c) openContact(c.id, { focus: true });
}

function closeContact() {
  contactPage.open = null;
  contactPage.pending = null;
  const card = document.getElementById("contact-card");
  card.hidden = true;
  for (const id of ["contact-title", "contact-meta", "contact-form-status", "contact-conflict-text"]) {
    document.getElementById(id).textContent = "";
  }
  for (const id of ["contact-lists", "contact-timeline", "contact-other"]) {
    document.getElementById(id).replaceChildren();
  }
  const form = document.getElementById("contact-form");
  for (const el of form.querySelectorAll("input, textarea")) el.value = "";
  const box = document.getElementById("contact-account-fields");
  box.replaceChildren(box.querySelector("legend"));
  document.getElementById("contact-conflict").hidden = true;
  showNotice("");
}

function showContact(c, timeline) {
  document.getElementById("contact-card").hidden = false;
  document.getElementById("contact-title").textContent = contactName(c);
  document.getElementById("contact-conflict").hidden = true;
  contactSay("contact-form-status", "");
  const form = document.getElementById("contact-form");
  const set = (name, value) => { form.elements.namedItem(name).value = value || ""; };
  set("first_name", c.first_name);
  set("last_name", c.last_name);
  set("phone", c.phone_e164);
  for (const name of ["email", "postal_address", "profession", "time_zone"]) set(name, c[name]);
  const box = document.getElementById("contact-account-fields");
  const values = c.fields || {};
  box.replaceChildren(box.querySelector("legend"), ...contactPage.fields.map((f) => fieldInput(f, values[f.key])));
  box.hidden = contactPage.fields.length === 0;
  // What the form showed as read, to send only what the supervisor changed.
  contactFormRead(form);
  const meta = [`Version ${c.version}`, `created ${contactWhen(c.created_at)}`,
    `changed ${contactWhen(c.updated_at)}`];
  if (c.phone_raw && c.phone_raw !== c.phone_e164) meta.push(`number given as ${c.phone_raw}`);
  let line = `${meta.join(", ")}.`;
  // Numbers of contacts merged into this one: kept, never dialled.
  const others = (c.other_numbers || []).map((n) => n.phone_e164);
  if (others.length) line += ` Other numbers, never dialled: ${others.join(", ")}.`;
  if (c.suppressed) line += " The number is on the suppression list: it is never dialled.";
  document.getElementById("contact-meta").textContent = line;
  // Columns an import kept beyond the account's fields, read-only here.
  const other = Object.entries(c.custom_fields || {});
  document.getElementById("contact-other").replaceChildren(...other.flatMap(([k, v]) => {
    const dt = document.createElement("dt");
    dt.textContent = k;
    const dd = document.createElement("dd");
    dd.textContent = typeof v === "string" ? v : JSON.stringify(v);
    return [dt, dd];
  }));
  const lists = c.lists || [];
  document.getElementById("contact-lists").replaceChildren(...(lists.length
    ? lists.map((id) => text("li", contactPage.lists.get(id) || `list #${id}`))
    : [text("li", "On no list.")]));
  // The agent of a call is whoever recorded its disposition.
  const agentOf = new Map();
  for (const i of c.interactions || []) if (i.attempt_id && i.user_id) agentOf.set(i.attempt_id, i.user_id);
  for (const e of timeline) if (e.kind === "interaction" && e.attempt_id && e.user_id) agentOf.set(e.attempt_id, e.user_id);
  document.getElementById("contact-timeline").replaceChildren(...(timeline.length
    ? timeline.map((e) => timelineEntry(e, agentOf))
    : [text("li", "Nothing yet.")]));
}

function timelineEntry(e, agentOf) {
  const li = document.createElement("li");
  li.dataset.kind = e.kind;
  const when = document.createElement("time");
  when.dateTime = e.at;
  when.textContent = contactWhen(e.at);
  const what = document.createElement("span");
  li.append(when, what);
  switch (e.kind) {
    case "call": {
      const parts = [e.direction === "inbound" ? "Inbound call" : "Call"];
      if (e.campaign_id) parts.push(contactCampaign(e.campaign_id));
      parts.push(e.outcome ? e.outcome.replaceAll("_", " ") : "in progress");
      if (agentOf.has(e.attempt_id)) parts.push(`agent ${contactUser(agentOf.get(e.attempt_id))}`);
      if (e.talk_secs !== null && e.talk_secs !== undefined) parts.push(`talked ${duration(e.talk_secs)}`);
      what.textContent = parts.join(" · ");
      break;
    }
    case "interaction": {
      const kind = e.interaction_kind === "call" || !e.interaction_kind
        ? "Disposition" : e.interaction_kind.replaceAll("_", " ");
      what.textContent = `${kind[0].toUpperCase()}${kind.slice(1)}${e.disposition ? `: ${e.disposition}` : ""}` +
        ` by ${e.user_id ? contactUser(e.user_id) : "the dialler"}`;
      if (e.notes) {
        const notes = document.createElement("span");
        notes.className = "notes";
        notes.textContent = e.notes;
        li.append(notes);
      }
      break;
    }
    case "callback":
      what.textContent = `Callback due (${contactCampaign(e.campaign_id)}) for ${e.user_id ? contactUser(e.user_id) : "any agent"}`;
      break;
    case "edit": {
      const did = {
        "contact.create": "Created", "contact.merge": "Merged with another record",
        "contact.merge_undo": "Merge undone",
      }[e.action] || "Edited";
      what.textContent = `${did} by ${contactUser(e.user_id)}` +
        `${e.fields.length ? `: ${contactWords(e.fields)}` : ""}`;
      break;
    }
    case "added_to_list":
      what.textContent = `Added to the list ${contactPage.lists.get(e.list_id) || `#${e.list_id}`}`;
      break;
    default:
      what.textContent = e.kind;
  }
  return li;
}

function showNotice(message) {
  const el = document.getElementById("contact-notice");
  clearTimeout(contactPage.noticeTimer);
  el.textContent = message;
  el.hidden = !message;
  // "Just now" stops being true: after a minute the notice says when.
  if (message.includes("just now")) {
    const at = new Date().toLocaleTimeString();
    contactPage.noticeTimer = setTimeout(() => {
      if (el.textContent === message) el.textContent = message.replace("just now", `at ${at}`);
    }, 60000);
  }
}

// Whether the form holds a change not saved yet.
function contactDirty() {
  return contactFormDirty(document.getElementById("contact-form"));
}

async function saveContact(ev) {
  ev.preventDefault();
  const c = contactPage.open;
  if (!c || contactPage.saving) return;
  const form = document.getElementById("contact-form");
  const bad = unreadable(form);
  if (bad) {
    contactSay("contact-form-status", bad, true);
    return;
  }
  const change = contactFormChange(form);
  if (Object.keys(change).length === 0) {
    contactSay("contact-form-status", "Nothing to save: no field was changed.");
    return;
  }
  const read = c.version;
  const save = document.getElementById("contact-save");
  contactPage.saving = true;
  save.disabled = true;
  try {
    const saved = await contactFetch(`/api/contacts/${c.id}`, {
      method: "PATCH",
      body: JSON.stringify({ version: read, ...change }),
    });
    await openContact(c.id);
    let said = `Saved (${contactWords(saved.changed)}): now at version ${saved.version}.`;
    if (saved.suppressed) said += " The number is on the suppression list: it is never dialled.";
    contactSay("contact-form-status", said);
  } catch (e) {
    if (e.status === 409) {
      await conflicted(c, read, e.message);
    } else {
      contactSay("contact-form-status", e.message, true);
      const el = markInvalid(form, e.message);
      if (el) el.focus();
    }
  } finally {
    contactPage.saving = false;
    save.disabled = false;
    const later = contactPage.pending;
    contactPage.pending = null;
    if (later) contactEditedElsewhere(later);
  }
}

// A 409: someone changed the contact since it was read, or the number is
// another contact's. Only the first offers to reload; nothing is retried.
async function conflicted(c, read, message) {
  let now = null;
  try {
    now = await contactFetch(`/api/contacts/${c.id}`);
  } catch (e) {
    now = null;
  }
  if (!now || now.version === read) {
    contactSay("contact-form-status", message, true);
    markInvalid(document.getElementById("contact-form"), message);
    return;
  }
  contactSay("contact-form-status", "");
  document.getElementById("contact-conflict-text").textContent =
    `Someone else changed this contact since you opened it (you read version ${read}; ` +
    `it is now at version ${now.version}). Your changes were not saved. Reload the contact ` +
    "to see theirs, then make yours again.";
  document.getElementById("contact-conflict").hidden = false;
  document.getElementById("contact-conflict-reload").focus();
}

// Another user (an agent on a call with the contact, another supervisor)
// saved the open contact: read it again, unless the form holds changes of
// this supervisor's, which are kept until they choose (saving them then
// gets the conflict and its offer to reload).
function contactEditedElsewhere(ev) {
  const c = contactPage.open;
  if (!c || ev.contact_id !== c.id || ev.version <= c.version) return;
  if (contactPage.saving) {
    contactPage.pending = ev;
    return;
  }
  const fields = ev.fields && ev.fields.length ? `: ${contactWords(ev.fields)}` : "";
  const notice = `Changed by ${contactUser(ev.by)} just now${fields}.`;
  if (contactDirty()) {
    showNotice(`${notice} Your unsaved changes are still in the form: reload to see theirs.`);
    return;
  }
  openContact(c.id, { notice });
}

// A new contact.

async function createContact(ev) {
  ev.preventDefault();
  const form = ev.target;
  const bad = unreadable(form);
  if (bad) {
    contactSay("contact-new-status", bad, true);
    return;
  }
  const value = (name) => form.elements.namedItem(name).value.trim();
  const body = {};
  for (const name of ["phone", "region", "first_name", "last_name", "email", "postal_address"]) {
    if (value(name)) body[name] = value(name);
  }
  if (value("list_id")) body.list_id = Number(value("list_id"));
  const fields = {};
  for (const el of document.querySelectorAll("#contact-new-fields [data-key]")) {
    const v = fieldValue(el);
    if (v !== null) fields[el.dataset.key] = v;
  }
  if (Object.keys(fields).length) body.fields = fields;
  const create = document.getElementById("contact-create");
  create.disabled = true;
  try {
    const saved = await contactFetch("/api/contacts", { method: "POST", body: JSON.stringify(body) });
    form.reset();
    markInvalid(form, "");
    let said = `Created ${contactName(saved)} (${saved.phone_e164}).`;
    if (saved.suppressed) said += " The number is on the suppression list: it is never dialled.";
    contactSay("contact-new-status", said);
    await openContact(saved.id, { focus: true });
  } catch (e) {
    contactSay("contact-new-status", e.message, true);
    const el = markInvalid(form, e.message);
    if (el) el.focus();
  } finally {
    create.disabled = false;
  }
}
