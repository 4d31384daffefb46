"use strict";
// Duplicates on the supervisor's Contacts tab: the account's likely
// duplicate pairs (or the open contact's), two records compared side by
// side, the one to keep chosen, the merge confirmed in a dialog, and the
// account's recent merges with an Undo while their day lasts. A merge names
// the versions the supervisor read, so a record changed since is never
// merged unseen. Values go into the page as text only; the server checks
// everything. Helpers come from contacts.js and contact-form.js.

const mergePage = {
  wired: false,
  // The cursor of the account's next page of pairs, and whether every
  // contact was walked.
  after: null,
  walked: false,
  // Contacts read, by id, to name the ids a merge carries.
  seen: new Map(),
  // The two contacts under review, as read.
  review: null,
  merging: false,
};

const DUPLICATE_REASONS = {
  same_email: "same email",
  same_number: "same number",
  similar_name_postcode: "similar name, same postcode",
};

// How many pages of the account one search walks at most, looking for pairs.
const PAGES_PER_LOOK = 20;

function mergeSay(message, isError = false) {
  contactSay("merge-status", message, isError);
}

async function loadMerges() {
  if (!mergePage.wired) wireMerges();
  await showMerges();
}

// A refusal leaves nothing of an earlier answer on screen.
function forgetMerges() {
  closeReview();
  mergePage.after = null;
  mergePage.walked = false;
  mergePage.seen.clear();
  document.querySelector("#dup-pairs tbody").replaceChildren();
  document.querySelector("#merge-list tbody").replaceChildren();
  document.getElementById("dup-more").hidden = true;
}

function wireMerges() {
  mergePage.wired = true;
  document.getElementById("dup-find").addEventListener("click", () => findPairs(true));
  document.getElementById("dup-more").addEventListener("click", () => findPairs(false));
  const form = document.getElementById("merge-review");
  form.addEventListener("submit", askToMerge);
  form.addEventListener("change", showMergePlan);
  // Escape leaves the comparison; nothing was typed that it could lose.
  form.addEventListener("keydown", (ev) => {
    if (ev.key !== "Escape") return;
    ev.preventDefault();
    closeReview();
    document.getElementById("dup-find").focus();
  });
  document.getElementById("merge-cancel").addEventListener("click", () => {
    closeReview();
    document.getElementById("dup-find").focus();
  });
  // The dialog's form says which button closed it as it submits.
  document.querySelector("#merge-dialog form").addEventListener("submit", (ev) => {
    if (ev.submitter && ev.submitter.value === "merge") mergeReviewed();
  });
  document.getElementById("contact-duplicates").addEventListener("click", () => {
    if (contactPage.open) findDuplicatesOf(contactPage.open);
  });
}

function remember(c) {
  mergePage.seen.set(c.id, c);
}

function mergeName(id) {
  const c = mergePage.seen.get(id);
  return c ? `${contactName(c)} (#${id})` : `contact #${id}`;
}

function describe(c) {
  return [contactName(c), c.phone_e164, c.email].filter(Boolean).join(" · ");
}

function mergeButton(label, aria, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.setAttribute("aria-label", aria);
  b.addEventListener("click", onClick);
  return b;
}

// Likely duplicates.

// Walks the account's contacts a page at a time from where the last look
// stopped, until a page has pairs or every contact was walked.
async function findPairs(fresh) {
  const tbody = document.querySelector("#dup-pairs tbody");
  if (fresh) {
    mergePage.after = null;
    mergePage.walked = false;
    tbody.replaceChildren();
    closeReview();
  }
  mergeSay("Looking for likely duplicates…");
  let found = 0;
  try {
    for (let pages = 0; pages < PAGES_PER_LOOK && found === 0 && !mergePage.walked; pages++) {
      const params = new URLSearchParams({ limit: "500" });
      if (mergePage.after !== null) params.set("after", String(mergePage.after));
      const page = await contactFetch(`/api/contacts/duplicates?${params}`);
      for (const p of page.pairs) tbody.append(pairRow(p.a, p.b, p.reasons));
      found += page.pairs.length;
      mergePage.after = page.next_after;
      mergePage.walked = page.next_after === null;
    }
  } catch (e) {
    mergeSay(e.message, true);
    return;
  }
  document.getElementById("dup-more").hidden = mergePage.walked;
  const n = tbody.rows.length;
  const pairs = `${n} likely duplicate pair${n === 1 ? "" : "s"}`;
  if (mergePage.walked) mergeSay(n ? `${pairs}: every contact was looked at.` : "No likely duplicates.");
  else mergeSay(n ? `${pairs} so far; look further for more.` : "None so far; look further for more.");
}

// The contacts that may be the same person as the open one.
async function findDuplicatesOf(c) {
  let found;
  try {
    found = await contactFetch(`/api/contacts/duplicates?contact_id=${c.id}`);
  } catch (e) {
    mergeSay(e.message, true);
    return;
  }
  closeReview();
  mergePage.walked = false;
  mergePage.after = null;
  document.getElementById("dup-more").hidden = true;
  document.querySelector("#dup-pairs tbody").replaceChildren(
    ...found.candidates.map((d) => pairRow(c, d.contact, d.reasons)));
  const n = found.candidates.length;
  mergeSay(n
    ? `${n} contact${n === 1 ? "" : "s"} may be the same person as ${contactName(c)}.`
    : `No likely duplicate of ${contactName(c)}.`);
  const first = document.querySelector("#dup-pairs tbody button");
  if (first) first.focus();
}

function pairRow(a, b, reasons) {
  remember(a);
  remember(b);
  const tr = document.createElement("tr");
  tr.dataset.contacts = `${a.id} ${b.id}`;
  const action = document.createElement("td");
  action.append(mergeButton("Review", `Review ${contactName(a)} and ${contactName(b)}`,
    () => reviewPair(a, b)));
  tr.append(td(describe(a)), td(describe(b)),
    td(reasons.map((r) => DUPLICATE_REASONS[r] || r).join(", ")), action);
  return tr;
}

// Two records side by side.

function reviewPair(a, b) {
  mergePage.review = { a, b };
  const form = document.getElementById("merge-review");
  form.hidden = false;
  document.getElementById("merge-a-head").textContent = `#${a.id}`;
  document.getElementById("merge-b-head").textContent = `#${b.id}`;
  document.getElementById("merge-keep-a").textContent = `Keep ${contactName(a)} (#${a.id})`;
  document.getElementById("merge-keep-b").textContent = `Keep ${contactName(b)} (#${b.id})`;
  // The older record is kept unless the supervisor chooses the other.
  form.elements.namedItem("keep").value = "a";
  const others = (c) => (c.other_numbers || []).map((n) => n.phone_e164).join(", ");
  const rows = [
    ["First name", (c) => c.first_name],
    ["Last name", (c) => c.last_name],
    ["Number", (c) => c.phone_e164],
    ["Other numbers", others],
    ["Email", (c) => c.email],
    ["Postal address", (c) => c.postal_address],
    ["Profession", (c) => c.profession],
    ["Time zone", (c) => c.time_zone],
    ["Created", (c) => contactWhen(c.created_at)],
    ["Version", (c) => String(c.version)],
    ...contactPage.fields.map((f) => [f.label, (c) => fieldShown(f, (c.fields || {})[f.key])]),
  ];
  const keys = new Set([...Object.keys(a.custom_fields || {}), ...Object.keys(b.custom_fields || {})]);
  for (const k of [...keys].sort()) {
    rows.push([k, (c) => {
      const v = (c.custom_fields || {})[k];
      return v === undefined || v === null ? "" : typeof v === "string" ? v : JSON.stringify(v);
    }]);
  }
  document.querySelector("#merge-compare tbody").replaceChildren(...rows.map(([label, of]) => {
    const tr = document.createElement("tr");
    const [va, vb] = [of(a) || "", of(b) || ""];
    if (va !== vb) tr.className = "differs";
    const th = text("th", label);
    th.scope = "row";
    tr.append(th, td(va), td(vb));
    return tr;
  }));
  showMergePlan();
  document.getElementById("merge-review-title").focus();
}

function fieldShown(def, value) {
  if (value === null || value === undefined) return "";
  if (def.kind === "yes_no") return value ? "Yes" : "No";
  return String(value);
}

function closeReview() {
  mergePage.review = null;
  document.getElementById("merge-review").hidden = true;
  document.querySelector("#merge-compare tbody").replaceChildren();
  for (const id of ["merge-plan", "merge-a-head", "merge-b-head", "merge-keep-a", "merge-keep-b"]) {
    document.getElementById(id).textContent = "";
  }
}

// Which record stays and what it takes from the other, as the server's
// merge does it: empty fields are filled, never a value overwritten.
function mergePlan() {
  const { a, b } = mergePage.review;
  const keepA = document.getElementById("merge-review").elements.namedItem("keep").value !== "b";
  const keep = keepA ? a : b;
  const gone = keepA ? b : a;
  const empty = (v) => v === null || v === undefined || (typeof v === "string" && v.trim() === "");
  const filled = ["first_name", "last_name", "email", "postal_address", "profession", "time_zone"]
    .filter((k) => empty(keep[k]) && !empty(gone[k]));
  const kc = keep.custom_fields || {};
  const gc = gone.custom_fields || {};
  if (Object.keys(gc).some((k) => !empty(gc[k]) && empty(kc[k]))) filled.push("custom_fields");
  const kv = keep.fields || {};
  for (const k of Object.keys(gone.fields || {})) if (!(k in kv)) filled.push(`field.${k}`);
  const numbers = [gone.phone_e164, ...(gone.other_numbers || []).map((n) => n.phone_e164)]
    .filter((n, i, all) => n !== keep.phone_e164 && all.indexOf(n) === i);
  return { keep, gone, filled, numbers };
}

function planSentences(plan) {
  const { keep, gone, filled, numbers } = plan;
  const kept = contactName(keep);
  const merged = contactName(gone);
  const lines = [
    `${kept} (#${keep.id}) stays, and is still called on ${keep.phone_e164}.`,
    `${merged}'s calls, notes, recordings, lists and callbacks move to ${kept}.`,
  ];
  if (numbers.length) lines.push(`${kept} keeps ${numbers.join(", ")} as other numbers, never dialled.`);
  lines.push(filled.length
    ? `${kept}'s empty fields take ${merged}'s: ${contactWords(filled)}. No value is overwritten.`
    : `No field of ${kept}'s changes: none of ${merged}'s fills an empty one.`);
  lines.push(`${merged} (#${gone.id}) is set aside; the merge can be undone for a day.`);
  return lines;
}

function showMergePlan() {
  if (!mergePage.review) return;
  document.getElementById("merge-plan").textContent = planSentences(mergePlan()).join(" ");
}

// The merge, once confirmed.

function askToMerge(ev) {
  ev.preventDefault();
  if (!mergePage.review || mergePage.merging) return;
  const plan = mergePlan();
  document.getElementById("merge-question").textContent =
    `Merge ${contactName(plan.gone)} (#${plan.gone.id}) into ${contactName(plan.keep)} (#${plan.keep.id})?`;
  document.getElementById("merge-consequences").replaceChildren(
    ...planSentences(plan).map((s) => text("li", s)));
  document.getElementById("merge-dialog").showModal();
}

async function mergeReviewed() {
  if (!mergePage.review || mergePage.merging) return;
  const { keep, gone } = mergePlan();
  mergePage.merging = true;
  document.getElementById("merge-go").disabled = true;
  try {
    const done = await contactFetch("/api/contacts/merge", {
      method: "POST",
      body: JSON.stringify({
        keep: keep.id, merge: gone.id, version_keep: keep.version, version_merge: gone.version,
      }),
    });
    remember(done.contact);
    closeReview();
    // Pairs with either record were read before the merge: they go.
    for (const tr of [...document.querySelectorAll("#dup-pairs tbody tr")]) {
      const ids = tr.dataset.contacts.split(" ").map(Number);
      if (ids.includes(keep.id) || ids.includes(gone.id)) tr.remove();
    }
    mergeSay(`Merged ${contactName(gone)} (#${gone.id}) into ${contactName(done.contact)} ` +
      `(#${keep.id}), merge ${done.merge_id}. It can be undone until ${contactWhen(done.undo_until)}.`);
    await showMerges();
    const undo = document.querySelector(`#merge-list tr[data-merge-id="${done.merge_id}"] button`);
    if (undo) undo.focus();
    reopenIfShown([keep.id, gone.id]);
  } catch (e) {
    if (e.status === 409) await mergeRefused(keep, gone, e.message);
    else mergeSay(e.message, true);
  } finally {
    mergePage.merging = false;
    document.getElementById("merge-go").disabled = false;
  }
}

// A 409: a record changed since it was read (shown again as it is now, to
// be reviewed afresh), or one is in a call or merged already.
async function mergeRefused(keep, gone, message) {
  let now = null;
  try {
    now = await Promise.all([keep, gone].map((c) => contactFetch(`/api/contacts/${c.id}`)));
  } catch (e) {
    now = null;
  }
  const changed = now && (now[0].version !== keep.version || now[1].version !== gone.version);
  if (!changed || !mergePage.review) {
    mergeSay(message, true);
    return;
  }
  const keepA = mergePage.review.a.id === keep.id;
  const [a, b] = keepA ? now : [now[1], now[0]];
  reviewPair(a, b);
  document.getElementById("merge-review").elements.namedItem("keep").value = keepA ? "a" : "b";
  showMergePlan();
  mergeSay("Nothing was merged: someone changed one of these contacts since you read them. " +
    "They are shown as they are now; merge them if they are still the same person.", true);
}

// The open contact, when a merge or an undo changed it, unless the form
// holds changes of the supervisor's, which the version check protects.
function reopenIfShown(ids) {
  const c = contactPage.open;
  if (c && ids.includes(c.id) && !contactDirty()) openContact(c.id);
}

// Recent merges.

async function showMerges() {
  let list;
  try {
    list = await contactFetch("/api/contacts/merges?limit=20");
  } catch (e) {
    mergeSay(e.message, true);
    return;
  }
  const tbody = document.querySelector("#merge-list tbody");
  tbody.replaceChildren(...list.map(mergeRow));
  document.getElementById("merge-none").hidden = list.length > 0;
}

function mergeRow(m) {
  const tr = document.createElement("tr");
  tr.dataset.mergeId = m.merge_id;
  tr.dataset.state = m.state;
  // The server's clock decides whether the day is over, not this computer's.
  const undoable = m.state === "open";
  const state = {
    open: `can be undone until ${contactWhen(m.undo_until)}`,
    undone: `undone ${m.closed_at ? contactWhen(m.closed_at) : ""}`.trim(),
    final: "final",
  }[m.state] || m.state;
  const action = document.createElement("td");
  if (undoable) {
    action.append(mergeButton("Undo", `Undo merge ${m.merge_id}: ${mergeName(m.merged_id)} ` +
      `into ${mergeName(m.kept_id)}`, () => undoMerge(m)));
  }
  tr.append(td(contactWhen(m.merged_at)), td(mergeName(m.kept_id)), td(mergeName(m.merged_id)),
    td(contactUser(m.user_id)), td(state), action);
  return tr;
}

async function undoMerge(m) {
  const button = document.querySelector(`#merge-list tr[data-merge-id="${m.merge_id}"] button`);
  if (button) button.disabled = true;
  try {
    const undone = await contactFetch(`/api/contacts/merge/${m.merge_id}/undo`, { method: "POST" });
    remember(undone.contact);
    remember(undone.restored);
    mergeSay(`Merge ${m.merge_id} undone: ${contactName(undone.restored)} (#${undone.restored.id}) and ` +
      `${contactName(undone.contact)} (#${undone.contact.id}) are two contacts again.`);
    reopenIfShown([undone.contact.id, undone.restored.id]);
  } catch (e) {
    mergeSay(e.message, true);
  }
  await showMerges();
  document.getElementById("merge-list-title").focus();
}
