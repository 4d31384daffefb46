"use strict";
// A contact's edit form, as the supervisor's Contacts tab and the agent's
// call card both show it: inputs for the account's fields that match their
// kind, what the form read, the change to send (only what was changed, as
// `PATCH /api/contacts/{id}` takes it), and the API's refusals pointed at
// the input they name. Values go in as text and input values only.

// How the contact's own fields read in a sentence; account fields by label.
const CONTACT_WORDS = {
  first_name: "first name", last_name: "last name", phone_e164: "number",
  phone_raw: "number", email: "email", postal_address: "postal address",
  profession: "profession", time_zone: "time zone", custom_fields: "other columns",
  other_numbers: "other numbers",
};

// The contact's own fields a form may hold: those a contact always has,
// then those an emptied input clears.
const CONTACT_KEPT = ["first_name", "last_name", "phone"];
const CONTACT_CLEARABLE = ["email", "postal_address", "profession", "time_zone"];

// Fetches JSON from the API; a refusal throws its message with its status.
async function contactFetch(path, options = {}) {
  const r = await fetch(path, {
    ...options,
    headers: { "Content-Type": "application/json", ...(options.headers || {}) },
  });
  if (r.status === 401) {
    window.location.assign("/login");
    throw new Error("logged out");
  }
  const data = r.status === 204 ? null : await r.json().catch(() => null);
  if (!r.ok) {
    const e = new Error((data && data.error) || `HTTP ${r.status}`);
    e.status = r.status;
    throw e;
  }
  return data;
}

// The names of changed fields (`changed`, `contact_edited`'s `fields`) in
// words, the account's fields by their label in `defs`.
function contactFieldWords(names, defs) {
  return names.map((n) => {
    if (n.startsWith("field.")) {
      const def = defs.find((f) => f.key === n.slice(6));
      return def ? def.label : n.slice(6);
    }
    return CONTACT_WORDS[n] || n;
  }).filter((w, i, all) => all.indexOf(w) === i).join(", ");
}

// An input for one of the account's fields, in its label.
function fieldInput(def, value) {
  let input;
  if (def.kind === "choice" || def.kind === "yes_no") {
    input = document.createElement("select");
    const choices = def.kind === "choice"
      ? def.choices.map((c) => new Option(c, c))
      : [new Option("Yes", "true"), new Option("No", "false")];
    input.append(new Option("—", ""), ...choices);
    // A value no longer among the choices still shows as it is.
    const text = fieldText(def, value);
    if (text && !(def.choices || []).concat(["true", "false"]).includes(text)) input.append(new Option(text, text));
  } else {
    input = document.createElement("input");
    input.type = { number: "number", date: "date" }[def.kind] || "text";
    if (def.kind === "number") input.step = "any";
    if (def.kind === "text") input.maxLength = 1000;
    input.autocomplete = "off";
  }
  input.name = `field.${def.key}`;
  input.dataset.key = def.key;
  input.dataset.kind = def.kind;
  input.dataset.label = def.label;
  if (def.required) input.setAttribute("aria-required", "true");
  input.value = fieldText(def, value);
  const label = document.createElement("label");
  label.append(`${def.label}${def.required ? " (required)" : ""} `, input);
  return label;
}

function fieldText(def, value) {
  if (value === null || value === undefined) return "";
  if (def.kind === "yes_no") return value ? "true" : "false";
  return String(value);
}

function fieldValue(input) {
  const v = input.value.trim();
  if (v === "") return null;
  if (input.dataset.kind === "number") return Number(v);
  if (input.dataset.kind === "yes_no") return v === "true";
  return v;
}

// Remembers what the form shows as read, to send only what is changed.
function contactFormRead(form) {
  for (const el of form.querySelectorAll("input, select, textarea")) {
    el.dataset.initial = el.value;
    el.removeAttribute("aria-invalid");
  }
}

// Whether the form holds a change not saved yet.
function contactFormDirty(form) {
  return [...form.querySelectorAll("input, select, textarea")]
    .some((el) => el.dataset.initial !== undefined && el.value !== el.dataset.initial);
}

// The fields changed in the form, as PATCH takes them (no version).
function contactFormChange(form) {
  const changed = (el) => el && el.value !== el.dataset.initial;
  const change = {};
  for (const name of CONTACT_KEPT) {
    const el = form.elements.namedItem(name);
    if (changed(el)) change[name] = el.value.trim();
  }
  for (const name of CONTACT_CLEARABLE) {
    const el = form.elements.namedItem(name);
    if (changed(el)) change[name] = el.value.trim() || null;
  }
  const fields = {};
  for (const el of form.querySelectorAll("[data-key]")) {
    if (changed(el)) fields[el.dataset.key] = fieldValue(el);
  }
  if (Object.keys(fields).length) change.fields = fields;
  return change;
}

// Points at the input an error message names, if it names one: by its
// name or label first, then by the word its message uses (`number`).
function markInvalid(form, message) {
  const inputs = [...form.querySelectorAll("input, select, textarea")].filter((el) => el.name);
  for (const el of inputs) el.removeAttribute("aria-invalid");
  if (!message) return null;
  const words = message.toLowerCase();
  const said = (name) => {
    if (!name) return false;
    const literal = name.toLowerCase().replace(/[.*+?^$|()[\]{}\\]/g, "\\$&");
    return new RegExp(`(^|[^a-z0-9_])${literal}([^a-z0-9_]|$)`).test(words);
  };
  const marked = inputs.find((el) => [el.name, el.dataset.key, el.dataset.label].some(said))
    || inputs.find((el) => said(el.dataset.says));
  if (marked) marked.setAttribute("aria-invalid", "true");
  return marked || null;
}

// A number or date the browser could not read shows as empty: refuse it
// rather than send it as a cleared value.
function unreadable(form) {
  const el = [...form.querySelectorAll("[data-key]")].find((e) => e.validity && e.validity.badInput);
  if (!el) return null;
  for (const other of form.querySelectorAll("[aria-invalid]")) other.removeAttribute("aria-invalid");
  el.setAttribute("aria-invalid", "true");
  el.focus();
  return el.dataset.kind === "number"
    ? `${el.dataset.label} must be a number such as 12 or -3.5.`
    : `${el.dataset.label} must be a whole date.`;
}
