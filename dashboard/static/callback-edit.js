"use strict";
// The agent corrects the contact of one of their callbacks from their
// callback list, between calls: the card's form (contact-form.js) with the
// account's fields the card shows, sending only what changed with the
// version read. The server allows it only for a contact of the agent's
// campaigns with a callback booked for them, and audits it; a save that
// someone else's change beat is refused and the contact offered anew.

const dialcrmCallbackEdit = (() => {
  const $ = (id) => document.getElementById(id);
  // The contact the form was filled from ({ id, version, name, defs }),
  // while it is open, and the button that opened it.
  const state = { edit: null, opener: null, saving: false };

  function say(message, isError = false) {
    const el = $("callback-status");
    el.textContent = message;
    el.classList.toggle("error", isError);
  }

  function formSay(message, isError = false) {
    const el = $("callback-form-status");
    el.textContent = message;
    el.classList.toggle("error", isError);
  }

  function nameOf(c) {
    return `${c.first_name || ""} ${c.last_name || ""}`.trim() || c.phone_e164;
  }

  // Opens the form for a callback's contact, read afresh.
  async function open(callback, opener) {
    const form = $("callback-form");
    if (state.edit && state.edit.id !== callback.contact_id && contactFormDirty(form)) {
      formSay(`Save or cancel your changes to ${state.edit.name} first.`, true);
      form.first_name.focus();
      return;
    }
    let contact;
    let defs;
    try {
      [contact, defs] = await Promise.all([
        contactFetch(`/api/contacts/${callback.contact_id}`),
        contactFetch("/api/account/fields"),
      ]);
    } catch (e) {
      close();
      say(e.status === 404
        ? `${callback.contact_name || "That contact"} is not in your campaigns any more: ` +
          "ask a supervisor to correct it."
        : e.message, true);
      return;
    }
    state.opener = opener;
    fill(contact, defs);
    say("");
    form.first_name.focus();
  }

  function fill(c, defs) {
    state.edit = { id: c.id, version: c.version, name: nameOf(c), defs };
    const form = $("callback-form");
    const set = (name, value) => { form.elements.namedItem(name).value = value || ""; };
    set("first_name", c.first_name);
    set("last_name", c.last_name);
    set("phone", c.phone_e164);
    for (const name of ["email", "postal_address", "profession"]) set(name, c[name]);
    // An agent reads only the values of the fields on the card.
    const values = c.fields || {};
    const box = $("callback-account-fields");
    box.replaceChildren(box.querySelector("legend"), ...defs.map((f) => fieldInput(f, values[f.key])));
    box.hidden = defs.length === 0;
    contactFormRead(form);
    $("callback-form-title").textContent = `Edit ${state.edit.name}`;
    $("callback-conflict").hidden = true;
    formSay("");
    form.hidden = false;
  }

  function close() {
    state.edit = null;
    const form = $("callback-form");
    form.reset();
    const box = $("callback-account-fields");
    box.replaceChildren(box.querySelector("legend"));
    box.hidden = true;
    markInvalid(form, "");
    form.hidden = true;
    $("callback-form-title").textContent = "";
    $("callback-conflict").hidden = true;
    $("callback-conflict-text").textContent = "";
    formSay("");
  }

  // Back to the button that opened the form, or the list if it is gone.
  function refocus(contactId) {
    const again = document.querySelector(`#callbacks button[data-contact-id="${contactId}"]`);
    const target = state.opener && state.opener.isConnected ? state.opener : again;
    if (target) target.focus();
  }

  async function save() {
    const form = $("callback-form");
    const edit = state.edit;
    if (!edit || state.saving) return;
    const bad = unreadable(form);
    if (bad) {
      formSay(bad, true);
      return;
    }
    const change = contactFormChange(form);
    if (Object.keys(change).length === 0) {
      formSay("Nothing to save: no field was changed.");
      return;
    }
    state.saving = true;
    $("callback-save").disabled = true;
    formSay("Saving…");
    try {
      const saved = await contactFetch(`/api/contacts/${edit.id}`, {
        method: "PATCH",
        body: JSON.stringify({ version: edit.version, ...change }),
      });
      if (state.edit !== edit) return;
      close();
      let said = `Saved ${nameOf(saved)} (${contactFieldWords(saved.changed, edit.defs)}).`;
      if (saved.suppressed) said += " The number is on the suppression list: it is never dialled.";
      say(said, saved.suppressed);
      refocus(edit.id);
      // The list shows the contact's name: it is read again.
      document.dispatchEvent(new CustomEvent("dialcrm:callback-contact-saved", { detail: saved }));
    } catch (e) {
      if (state.edit !== edit) return;
      if (e.status === 409) {
        await conflicted(edit, e.message);
      } else {
        formSay(e.message, true);
        const el = markInvalid(form, e.message);
        if (el) el.focus();
      }
    } finally {
      state.saving = false;
      $("callback-save").disabled = false;
    }
  }

  // A 409: someone changed the contact since the form was filled, or the
  // number is another contact's. Only the first offers to reload.
  async function conflicted(edit, message) {
    let now = null;
    try {
      now = await contactFetch(`/api/contacts/${edit.id}`);
    } catch {
      now = null;
    }
    if (state.edit !== edit) return;
    if (!now || now.version === edit.version) {
      formSay(message, true);
      markInvalid($("callback-form"), message);
      return;
    }
    formSay("");
    $("callback-conflict-text").textContent =
      `Someone else changed this contact since you opened the form (you read version ${edit.version}; ` +
      `it is now at version ${now.version}). Your changes were not saved. Reload the contact to see ` +
      "theirs, then make yours again.";
    $("callback-conflict").hidden = false;
    $("callback-conflict-reload").focus();
  }

  async function reload() {
    const edit = state.edit;
    if (!edit) return;
    let now;
    try {
      now = await contactFetch(`/api/contacts/${edit.id}`);
    } catch (e) {
      formSay(e.message, true);
      return;
    }
    if (state.edit !== edit) return;
    fill(now, edit.defs);
    formSay(`The form shows the contact as it is now (version ${now.version}); make your changes again.`);
    $("callback-form").first_name.focus();
  }

  // Escape leaves the form, but never throws away what was typed.
  function escape(ev) {
    if (ev.key !== "Escape" || ev.target.tagName === "SELECT") return;
    ev.preventDefault();
    if (contactFormDirty($("callback-form"))) {
      formSay("Save your changes, or press Cancel to drop them.");
      return;
    }
    cancel();
  }

  function cancel() {
    const id = state.edit && state.edit.id;
    close();
    if (id) refocus(id);
  }

  $("callback-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    save();
  });
  $("callback-form").addEventListener("keydown", escape);
  $("callback-cancel").addEventListener("click", cancel);
  $("callback-conflict-reload").addEventListener("click", reload);

  return {
    open,
    save,
    // Whether an element is inside the form, for the page's Ctrl+Enter.
    contains: (node) => node instanceof Node && $("callback-form").contains(node),
  };
})();
