"use strict";
// The agent's softphone: the desk websocket (protocol v1, docs/api.md), one
// WebRTC audio leg kept for the shift, the contact card (editable during a
// call and its wrap-up, with contact-form.js), the wrap-up form, and the
// agent's callbacks, whose contacts they may correct (callback-edit.js).
//
// `/agent?processing=off` turns the browser's echo cancellation, noise
// suppression and gain control off, for headsets that do their own.

(() => {
  const $ = (id) => document.getElementById(id);
  const DRAFT = "dialcrm.draft.";
  const CAMPAIGN = "dialcrm.campaign";
  const STATES = {
    paused: "Paused", ready: "Ready", dialling: "Dialling", in_call: "In call", wrap_up: "Wrap-up",
  };
  const RECORDING = { on: "recording", paused: "paused", off: "off" };

  const desk = {
    ws: null,
    backoff: 500,
    connectedOnce: false,
    mic: null,
    pc: null,
    state: "paused",
    stateSince: Date.now(),
    call: null, // { call_ref, since, ended }
    wrapup: null, // the call_ref the form is for
    card: null, // the contact of the call, as last read, while its card is shown
    shown: null, // { id, version } of the contact the card shows, call or preview
    edit: null, // { id, version } the card's edit form was filled from, while open
    cardSaving: false,
    cardNews: null, // an edit of the card's contact told while a save was on its way
    saving: false,
    muted: false,
    held: false,
    recording: "off",
  };

  // ---- The websocket ----

  function connect() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/api/agent/ws`);
    desk.ws = ws;
    ws.onopen = () => {
      desk.backoff = 500;
      setLink("live", "online");
    };
    ws.onmessage = (ev) => {
      let message;
      try {
        message = JSON.parse(ev.data);
      } catch {
        return;
      }
      receive(message);
    };
    ws.onclose = (ev) => {
      if (desk.ws !== ws) return;
      desk.ws = null;
      if (ev.code === 4001) {
        // The login session ended (logout elsewhere, expiry, deactivation).
        window.location.assign("/login");
        return;
      }
      setLink("down", "offline");
      const wait = desk.backoff;
      desk.backoff = Math.min(desk.backoff * 2, 15000);
      status(`Connection lost; reconnecting in ${Math.round(wait / 1000)} s…`, true);
      setTimeout(connect, wait);
    };
  }

  function send(message) {
    if (!desk.ws || desk.ws.readyState !== WebSocket.OPEN) {
      status("Not connected to the server; your action was not sent.", true);
      return false;
    }
    desk.ws.send(JSON.stringify(message));
    return true;
  }

  function receive(m) {
    switch (m.type) {
      case "welcome":
        welcome(m);
        break;
      case "webrtc_answer":
        if (desk.pc) {
          desk.pc.setRemoteDescription({ type: "answer", sdp: m.sdp }).catch((e) =>
            status(`Audio answer rejected: ${e.message}`, true));
        }
        break;
      case "desk_phone":
        deskPhone(m.state);
        break;
      case "state":
        setState(m.state, m.reason);
        break;
      case "preview":
        showPreview(m);
        break;
      case "call":
        showCall(m.call_ref, m.contact, m.script, m.inbound);
        showVoicemail(Boolean(m.voicemail));
        break;
      case "voicemail_left":
        voicemailLeft(m.call_ref);
        break;
      case "contact_edited":
        contactEdited(m);
        break;
      case "call_ended":
        callEnded(m);
        break;
      case "saved":
        saved(m.call_ref);
        break;
      case "wrap_up_expired":
        localStorage.removeItem(DRAFT + m.call_ref);
        if (desk.wrapup === m.call_ref) clearWrapup();
        hideContact();
        desk.call = null;
        status("The wrap-up time ran out: the call was logged without a disposition.", true);
        break;
      case "call_controls":
        controls(m);
        break;
      case "dial_check":
        dialCheck(m);
        break;
      case "dialling":
        $("dial-warnings").replaceChildren();
        $("dial-anyway").hidden = true;
        status(`Dialling ${m.number}…`);
        break;
      case "not_connected":
        status(m.cause ? `The call was not connected (${m.cause}).` : "The call was not connected.", true);
        break;
      case "restarting":
        status(m.message, true);
        break;
      case "error":
        // A refused save leaves the draft; the agent may fix it or discard it.
        if (desk.saving && desk.wrapup) $("discard").hidden = false;
        desk.saving = false;
        // A refused "Leave voicemail" may be tried again, or the call hung up.
        if (desk.state === "in_call" && !$("voicemail").hidden) $("voicemail").disabled = false;
        status(m.message, true);
        break;
      default:
        break;
    }
  }

  function welcome(m) {
    const select = $("campaign");
    const wanted = select.value || localStorage.getItem(CAMPAIGN) || "";
    select.replaceChildren();
    if (m.campaigns.length === 0) {
      select.append(new Option("No campaign is dialling", ""));
    }
    for (const c of m.campaigns) select.append(new Option(c.name, String(c.id)));
    if (m.campaigns.some((c) => String(c.id) === wanted)) select.value = wanted;
    const codes = $("pause-code");
    const code = codes.value;
    codes.replaceChildren(...(m.pause_codes || []).map((c) => new Option(c.label, c.code)));
    if ((m.pause_codes || []).some((c) => c.code === code)) codes.value = code;
    // Every new session starts paused on the server.
    setState("paused", desk.connectedOnce ? "reconnected" : null);
    status(desk.connectedOnce ? "Reconnected." : `Welcome, ${m.username}.`);
    desk.connectedOnce = true;
    if (wantsPhone() && m.audio) {
      // The desk phone (its call, or its ringing per call) outlives a
      // reload: it is still the audio.
      $("audio-choice").value = audioChoice();
      deskPhone(audioChoice() === "phone-per-call" ? "per_call" : "connected");
    } else {
      startAudio();
    }
    showCallbacks();
  }

  // ---- The agent's own callbacks (GET /api/callbacks) ----

  async function showCallbacks() {
    const ul = $("callbacks");
    let list;
    try {
      list = await api("/api/callbacks?limit=50");
    } catch {
      return; // The list is a convenience; the desk works without it.
    }
    if (list.length === 0) {
      ul.replaceChildren(text("li", "None booked."));
      ul.firstChild.className = "muted";
      return;
    }
    const now = Date.now();
    ul.replaceChildren(...list.map((c) => {
      const at = new Date(c.callback_at);
      const due = at.getTime() <= now ? " (due)" : "";
      const name = c.contact_name || `contact ${c.contact_id}`;
      const li = text("li", `${at.toLocaleString()}${due} — ${name} — ${c.campaign_name} `);
      const edit = document.createElement("button");
      edit.type = "button";
      edit.textContent = "Edit";
      edit.dataset.contactId = c.contact_id;
      edit.setAttribute("aria-label", `Edit the contact ${name}`);
      edit.addEventListener("click", () => dialcrmCallbackEdit.open(c, edit));
      li.append(edit);
      return li;
    }));
  }

  // ---- Audio ----

  // ---- Audio: the browser's microphone, or the agent's desk phone ----

  const AUDIO_CHOICE = "dialcrm.audio";
  const AUDIO_CHOICES = ["browser", "phone", "phone-per-call"];
  const audioChoice = () => {
    const stored = localStorage.getItem(AUDIO_CHOICE);
    return AUDIO_CHOICES.includes(stored) ? stored : "browser";
  };
  const wantsPhone = () => audioChoice() !== "browser";

  function deskPhone(state) {
    const says = {
      ringing: "Your desk phone is ringing: answer it and keep it off-hook for your shift.",
      connected: "Your desk phone is your audio.",
      unanswered: "Your desk phone did not answer; choose your audio again to retry.",
      ended: "Your desk phone hung up: you are paused until your audio is back.",
      per_call: "Your desk phone rings for each queue call (queue calls only); " +
        "a call left ringing goes to a colleague and pauses you.",
    };
    if (state === "connected") setAudio("live", "desk phone");
    else if (state === "per_call") setAudio("live", "desk phone, rung per call");
    else if (state === "ringing") setAudio("connecting", "desk phone…");
    else setAudio("down", "no audio");
    status(says[state] || state, state === "unanswered" || state === "ended");
  }

  function chooseAudio() {
    localStorage.setItem(AUDIO_CHOICE, $("audio-choice").value);
    startAudio();
  }

  async function startAudio() {
    $("audio-choice").value = audioChoice();
    if (wantsPhone()) {
      // The desk phone carries the audio: no microphone in the browser.
      if (desk.pc) {
        const pc = desk.pc;
        desk.pc = null;
        pc.close();
      }
      setAudio("connecting", "desk phone…");
      send({ type: "desk_phone", per_call: audioChoice() === "phone-per-call" });
      return;
    }
    // Browsers give the microphone only to secure pages (HTTPS, or this
    // computer itself): say so plainly rather than fail without a word.
    if (!window.isSecureContext || !navigator.mediaDevices) {
      setAudio("down", "no audio");
      const secure = new URL(location.href);
      secure.protocol = "https:";
      secure.port = "";
      $("needs-https-origin").textContent = location.origin;
      $("needs-https-url").textContent = secure.origin + location.pathname;
      $("needs-https").hidden = false;
      status("The microphone needs HTTPS: see the message above.", true);
      return;
    }
    setAudio("connecting", "audio…");
    try {
      if (!desk.mic) {
        const raw = new URLSearchParams(location.search).get("processing") === "off";
        const audio = raw
          ? { echoCancellation: false, noiseSuppression: false, autoGainControl: false }
          : true;
        desk.mic = await navigator.mediaDevices.getUserMedia({ audio });
        applyMute();
      }
      if (desk.pc) desk.pc.close();
      // A fresh connection for every session: the server makes a new leg per offer.
      const pc = new RTCPeerConnection();
      desk.pc = pc;
      pc.ontrack = (e) => {
        const remote = $("remote");
        remote.srcObject = e.streams[0] || new MediaStream([e.track]);
        remote.play().catch(() => status("Click anywhere to hear audio.", true));
      };
      pc.onconnectionstatechange = () => {
        if (desk.pc !== pc) return;
        const s = pc.connectionState;
        if (s === "connected") setAudio("live", "audio");
        else if (s === "failed" || s === "disconnected" || s === "closed") setAudio("down", "no audio");
        else setAudio("connecting", "audio…");
      };
      for (const track of desk.mic.getAudioTracks()) pc.addTrack(track, desk.mic);
      await pc.setLocalDescription(await pc.createOffer());
      await gathered(pc);
      if (desk.pc === pc) send({ type: "webrtc_offer", sdp: pc.localDescription.sdp });
      sendMic();
    } catch (e) {
      setAudio("down", "no audio");
      status(`Microphone or audio unavailable: ${e.message}`, true);
    }
  }

  // Resolves when ICE gathering is complete (the server takes no trickled candidates).
  function gathered(pc) {
    if (pc.iceGatheringState === "complete") return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        if (pc.iceGatheringState !== "complete") return;
        pc.removeEventListener("icegatheringstatechange", done);
        resolve();
      };
      pc.addEventListener("icegatheringstatechange", done);
      setTimeout(resolve, 5000);
    });
  }

  // The microphone reaches the server only while a call may hear it (in a
  // call, or dialling one). Between calls the leg stays connected (ICE
  // consent checks, RTCP) but carries no audio, which is what makes an idle
  // leg nearly free for the server. replaceTrack needs no renegotiation, so
  // the audio is back within milliseconds of the call reaching the agent.
  function sendMic() {
    const pc = desk.pc;
    if (!pc || !desk.mic) return;
    const live = desk.state === "in_call" || desk.state === "dialling";
    const track = live ? desk.mic.getAudioTracks()[0] || null : null;
    for (const sender of pc.getSenders()) {
      if (sender.track !== track) {
        sender.replaceTrack(track).catch((e) => status(`Microphone not switched: ${e.message}`, true));
      }
    }
    $("audio").dataset.mic = track ? "live" : "idle";
  }

  function toggleMute() {
    desk.muted = !desk.muted;
    applyMute();
  }

  function applyMute() {
    if (desk.mic) for (const t of desk.mic.getAudioTracks()) t.enabled = !desk.muted;
    const b = $("mute");
    b.setAttribute("aria-pressed", String(desk.muted));
    b.firstChild.textContent = desk.muted ? "Unmute " : "Mute ";
  }

  // ---- State and call ----

  // Why the server paused the agent, in words.
  const REASONS = {
    no_audio: "no audio",
    not_answering: "your desk phone did not answer",
  };

  function setState(state, reason) {
    if (state !== desk.state) desk.stateSince = Date.now();
    desk.state = state;
    sendMic();
    const badge = $("state");
    badge.dataset.state = state;
    badge.textContent = STATES[state] || state;
    $("state-reason").textContent = reason ? `(${REASONS[reason] || reason})` : "";
    $("hangup").disabled = state !== "in_call" && state !== "dialling";
    if (state !== "in_call") {
      controls({ held: false, recording: "off" });
      showVoicemail(false);
    }
    if (state === "ready" && !desk.wrapup) {
      hideContact();
      desk.call = null;
    }
    tick();
  }

  function showCall(callRef, contact, script, inbound) {
    desk.call = { call_ref: callRef, since: Date.now(), ended: null };
    clearWrapup();
    $("preview-actions").hidden = true;
    // A reconnection sends the card again: an open form keeps what was typed.
    const editing = desk.edit && desk.edit.id === contact.id;
    desk.card = contact;
    if (!editing) closeEdit();
    $("card-status").textContent = "";
    const name = renderContact(contact);
    showScript(script);
    $("contact").dataset.callRef = callRef;
    // A customer who called one of the account's numbers: which queue,
    // and whether they are on the do-not-call list.
    $("inbound").hidden = !inbound;
    $("inbound-queue").textContent = inbound ? `Inbound call to ${inbound.queue}` : "";
    $("inbound-dnc").hidden = !(inbound && inbound.do_not_call);
    status(inbound ? `${name} called ${inbound.queue}.` : `Connected to ${name}.`);
  }

  // Preview campaigns: the contact comes first; the agent calls or skips.
  function showPreview(m) {
    if (!m.contact) {
      hideContact();
      $("preview-actions").hidden = true;
      status("Nobody may be called now in this campaign.");
      return;
    }
    // Nobody is on the line yet: the card is read-only.
    desk.card = null;
    closeEdit();
    const name = renderContact(m.contact);
    showScript(m.script);
    $("inbound").hidden = true;
    $("preview-actions").hidden = false;
    status(`Preview: call ${name}, or skip to the next contact.`);
  }

  function hideContact() {
    desk.card = null;
    desk.shown = null;
    closeEdit();
    $("card-status").textContent = "";
    $("contact").hidden = true;
    $("inbound").hidden = true;
    $("script-panel").hidden = true;
    $("script").replaceChildren();
  }

  // The campaign's script, rendered by the server for this contact; built
  // from text nodes only (script-view.js).
  function showScript(script) {
    $("script-panel").hidden = !dialcrmScript.render($("script"), script);
  }

  function renderContact(contact) {
    desk.shown = { id: contact.id, version: contact.version };
    const name = `${contact.first_name || ""} ${contact.last_name || ""}`.trim() || contact.phone_e164;
    $("contact-name").textContent = name;
    const dl = $("contact-fields");
    dl.replaceChildren();
    const field = (label, value) => {
      if (value === null || value === undefined || value === "") return;
      const dt = document.createElement("dt");
      dt.textContent = label;
      const dd = document.createElement("dd");
      dd.textContent = typeof value === "object" ? JSON.stringify(value) : String(value);
      dl.append(dt, dd);
    };
    field("Number", contact.phone_e164);
    // Numbers of contacts merged into this one, never dialled.
    field("Other numbers", (contact.other_numbers || []).map((n) => n.phone_e164).join(", "));
    field("Email", contact.email);
    field("Address", contact.postal_address);
    field("Profession", contact.profession);
    field("Time zone", contact.time_zone);
    // The account's own fields marked for the card, in the account's order;
    // the Edit form changes them (PATCH /api/contacts/{id} takes them as "fields").
    for (const f of contact.card_fields || []) {
      field(f.label, typeof f.value === "boolean" ? (f.value ? "Yes" : "No") : f.value);
    }
    for (const [k, v] of Object.entries(contact.custom_fields || {})) field(k, v);
    const ul = $("contact-history");
    const history = contact.history || [];
    ul.replaceChildren(...history.map((i) => {
      const li = document.createElement("li");
      const when = new Date(i.occurred_at).toLocaleString();
      li.textContent = `${when} — ${i.kind}${i.disposition ? `: ${i.disposition}` : ""}`;
      if (i.notes) {
        const notes = document.createElement("div");
        notes.className = "muted";
        notes.textContent = i.notes;
        li.append(notes);
      }
      return li;
    }));
    if (history.length === 0) ul.append(Object.assign(document.createElement("li"), { textContent: "None." }));
    $("contact").hidden = false;
    return name;
  }

  // ---- Editing the contact of the call (PATCH /api/contacts/{id}) ----
  //
  // An agent may edit the contact of their call while talking and while
  // wrapping it up. The form sends only what was changed, with the version
  // it was filled from: someone else's change since is a 409, never
  // overwritten, and the agent is offered the card as it is now.

  function openEdit() {
    const c = desk.card;
    if (!c) return;
    if (!desk.edit) fillEdit(c);
    $("card-status").textContent = "";
    $("card-form").first_name.focus();
  }

  function fillEdit(c) {
    desk.edit = { id: c.id, version: c.version };
    const form = $("card-form");
    const set = (name, value) => { form.elements.namedItem(name).value = value || ""; };
    set("first_name", c.first_name);
    set("last_name", c.last_name);
    set("phone", c.phone_e164);
    for (const name of ["email", "postal_address", "profession"]) set(name, c[name]);
    const defs = c.card_fields || [];
    const box = $("card-account-fields");
    box.replaceChildren(box.querySelector("legend"), ...defs.map((f) => fieldInput(f, f.value)));
    box.hidden = defs.length === 0;
    contactFormRead(form);
    $("card-conflict").hidden = true;
    cardFormSay("");
    form.hidden = false;
    $("contact-fields").hidden = true;
    $("contact-edit").setAttribute("aria-expanded", "true");
  }

  function closeEdit() {
    desk.edit = null;
    const form = $("card-form");
    form.reset();
    const box = $("card-account-fields");
    box.replaceChildren(box.querySelector("legend"));
    box.hidden = true;
    markInvalid(form, "");
    form.hidden = true;
    $("card-conflict").hidden = true;
    $("card-conflict-text").textContent = "";
    cardFormSay("");
    $("contact-fields").hidden = false;
    $("card-actions").hidden = !desk.card;
    $("contact-edit").setAttribute("aria-expanded", "false");
  }

  // Escape leaves the form, but never throws away what was typed.
  function escapeEdit(ev) {
    if (ev.key !== "Escape" || ev.target.tagName === "SELECT") return;
    ev.preventDefault();
    if (contactFormDirty($("card-form"))) {
      cardFormSay("Save your changes, or press Cancel to drop them.");
      return;
    }
    closeEdit();
    $("contact-edit").focus();
  }

  function cancelEdit() {
    closeEdit();
    $("contact-edit").focus();
  }

  async function saveEdit() {
    const form = $("card-form");
    const edit = desk.edit;
    if (!edit || desk.cardSaving) return;
    const bad = unreadable(form);
    if (bad) {
      cardFormSay(bad, true);
      return;
    }
    const change = contactFormChange(form);
    if (Object.keys(change).length === 0) {
      cardFormSay("Nothing to save: no field was changed.");
      return;
    }
    desk.cardSaving = true;
    $("card-save").disabled = true;
    cardFormSay("Saving…");
    try {
      const saved = await contactFetch(`/api/contacts/${edit.id}`, {
        method: "PATCH",
        body: JSON.stringify({ version: edit.version, ...change }),
      });
      if (desk.edit !== edit) {
        // The call, and its card, moved on meanwhile.
        status("The contact was saved.");
        return;
      }
      const words = contactFieldWords(saved.changed, desk.card.card_fields || []);
      updateCard(saved);
      closeEdit();
      let said = `Saved (${words}).`;
      if (saved.suppressed) said += " The number is on the suppression list: it is never dialled.";
      cardSay(said, saved.suppressed);
      $("contact-edit").focus();
    } catch (e) {
      if (desk.edit !== edit) return;
      if (e.status === 409) {
        await conflicted(edit, e.message);
      } else {
        cardFormSay(e.message, true);
        const el = markInvalid(form, e.message);
        if (el) el.focus();
      }
    } finally {
      desk.cardSaving = false;
      $("card-save").disabled = false;
      const later = desk.cardNews;
      desk.cardNews = null;
      if (later) contactEdited(later);
    }
  }

  // Someone else (a supervisor, a merge, this agent on another page)
  // changed the contact on the card: the card shows it as it is now, and
  // an open form that holds nothing typed is filled anew. Changes the
  // agent typed stay in the form; saving them would be refused, as the
  // form still names the version it was filled from.
  function contactEdited(m) {
    const fresh = m.contact;
    const shown = desk.shown;
    if (!shown || shown.id !== fresh.id || fresh.version <= shown.version) return;
    if (desk.cardSaving) {
      // The save's answer may be this very change: it is looked at after.
      desk.cardNews = m;
      return;
    }
    const words = m.fields.length ? `: ${contactFieldWords(m.fields, fresh.card_fields || [])}` : "";
    const notice = `${m.by ? `Changed by ${m.by}` : "Changed"} just now${words}.`;
    const onCall = desk.card && desk.card.id === fresh.id;
    if (onCall) desk.card = fresh;
    renderContact(fresh);
    if (m.script) showScript(m.script);
    if (onCall && desk.edit) {
      if (contactFormDirty($("card-form"))) {
        cardSay(`${notice} Your changes are still in the form and not saved: saving them now ` +
          "would be refused, so reload the card to see theirs first.");
        return;
      }
      fillEdit(desk.card);
    }
    cardSay(notice);
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
    if (desk.edit !== edit) return;
    if (!now || now.version === edit.version) {
      cardFormSay(message, true);
      markInvalid($("card-form"), message);
      return;
    }
    cardFormSay("");
    $("card-conflict-text").textContent =
      `Someone else changed this contact since you opened the form (you read version ${edit.version}; ` +
      `it is now at version ${now.version}). Your changes were not saved. Reload the card to see ` +
      "theirs, then make yours again.";
    $("card-conflict").hidden = false;
    $("card-conflict-reload").focus();
  }

  // Reads the contact again and fills the card and the form with it.
  async function reloadCard() {
    const c = desk.card;
    if (!c) return;
    let now;
    try {
      now = await contactFetch(`/api/contacts/${c.id}`);
    } catch (e) {
      cardFormSay(e.message, true);
      return;
    }
    if (desk.card !== c) return;
    updateCard(now);
    fillEdit(desk.card);
    cardFormSay(`The card shows the contact as it is now (version ${now.version}); make your changes again.`);
    $("card-form").first_name.focus();
  }

  // Takes the contact's fields as the API gave them into the card shown.
  function updateCard(fresh) {
    const c = desk.card;
    for (const key of ["first_name", "last_name", "phone_e164", "phone_raw", "email", "postal_address",
      "profession", "time_zone", "custom_fields", "version", "updated_at"]) {
      if (key in fresh) c[key] = fresh[key];
    }
    // The API gives an agent only the values of the fields on the card.
    c.fields = fresh.fields || {};
    c.card_fields = (c.card_fields || []).map((f) => ({ ...f, value: f.key in c.fields ? c.fields[f.key] : null }));
    renderContact(c);
  }

  function cardSay(message, isError = false) {
    const el = $("card-status");
    el.textContent = message;
    el.classList.toggle("error", isError);
  }

  function cardFormSay(message, isError = false) {
    const el = $("card-form-status");
    el.textContent = message;
    el.classList.toggle("error", isError);
  }

  // Hold and recording of the call in progress, as the server has them.
  function controls(m) {
    desk.held = Boolean(m.held);
    desk.recording = m.recording || "off";
    const inCall = desk.state === "in_call";
    const hold = $("hold");
    hold.disabled = !inCall;
    hold.setAttribute("aria-pressed", String(desk.held));
    hold.firstChild.textContent = desk.held ? "Resume " : "Hold ";
    const record = $("record");
    record.disabled = !inCall || desk.recording === "off";
    record.setAttribute("aria-pressed", String(desk.recording === "paused"));
    record.firstChild.textContent = desk.recording === "paused" ? "Resume recording " : "Pause recording ";
    const badge = $("recording");
    badge.dataset.state = desk.recording;
    badge.textContent = RECORDING[desk.recording] || desk.recording;
    for (const b of $("keypad").querySelectorAll("button")) b.disabled = !inCall || desk.held;
  }

  function toggleHold() {
    if (desk.state === "in_call") send({ type: "hold", on: !desk.held });
  }

  function toggleRecording() {
    if (desk.state === "in_call" && desk.recording !== "off") {
      send({ type: "recording", paused: desk.recording === "on" });
    }
  }

  function digit(d) {
    if (desk.state === "in_call" && !desk.held && send({ type: "dtmf", digits: d })) status(`Sent ${d}.`);
  }

  // ---- Manual dial ----

  function dial(confirm) {
    const number = $("manual").number.value.trim();
    if (!number) return;
    $("dial-warnings").replaceChildren();
    $("dial-anyway").hidden = true;
    send({ type: "manual_dial", number, confirm });
  }

  function dialCheck(m) {
    $("dial-warnings").replaceChildren(...m.warnings.map((w) =>
      Object.assign(document.createElement("li"), { textContent: w })));
    $("dial-anyway").hidden = !m.may_confirm;
    status(m.may_confirm ? `Check before dialling ${m.number}.` : `${m.number} may not be dialled.`, true);
  }

  function callEnded(m) {
    if (desk.call && desk.call.call_ref === m.call_ref) desk.call.ended = Date.now();
    const name = desk.call && desk.call.call_ref === m.call_ref ? $("contact-name").textContent : "";
    const draft = loadDraft(m.call_ref) || { call_ref: m.call_ref, name };
    draft.dispositions = m.dispositions;
    storeDraft(draft);
    showWrapup(draft, false);
    desk.wrapDue = typeof m.wrap_up_secs === "number" ? Date.now() + m.wrap_up_secs * 1000 : null;
    status(m.cause ? `Call ended (${m.cause}). Choose a disposition.` : "Call ended. Choose a disposition.");
  }

  // ---- Wrap-up, kept in localStorage until the server has saved it ----

  function showWrapup(draft, restored) {
    desk.wrapup = draft.call_ref;
    const form = $("wrapup");
    const select = form.disposition;
    select.replaceChildren(new Option("Choose…", ""));
    for (const d of draft.dispositions || []) select.append(new Option(d.replaceAll("_", " "), d));
    select.value = draft.disposition || "";
    form.notes.value = draft.notes || "";
    form.callback_at.value = draft.callback_at || "";
    form.callback_mine.checked = Boolean(draft.callback_mine);
    $("wrapup-for").textContent = draft.name ? `— ${draft.name}` : "";
    $("discard").hidden = !restored;
    $("wrapup-panel").hidden = false;
    $("wrapup-panel").dataset.callRef = draft.call_ref;
    // An agent typing a correction to the contact keeps the focus.
    if (!$("card-form").contains(document.activeElement)) select.focus();
  }

  function clearWrapup() {
    desk.wrapup = null;
    desk.wrapDue = null;
    desk.saving = false;
    $("wrapup").reset();
    $("wrapup-panel").hidden = true;
    delete $("wrapup-panel").dataset.callRef;
  }

  function formDraft() {
    const form = $("wrapup");
    const old = loadDraft(desk.wrapup) || {};
    return {
      ...old,
      call_ref: desk.wrapup,
      disposition: form.disposition.value,
      notes: form.notes.value,
      callback_at: form.callback_at.value,
      callback_mine: form.callback_mine.checked,
    };
  }

  function save() {
    const form = $("wrapup");
    if (!desk.wrapup || desk.saving) return;
    // Saving the wrap-up closes the card: an unsaved correction would be lost.
    if (desk.edit && contactFormDirty($("card-form"))) {
      status("Save or cancel your changes to the contact first.", true);
      $("card-save").focus();
      return;
    }
    if (!form.reportValidity()) return;
    const d = formDraft();
    storeDraft(d);
    const message = { type: "disposition", call_ref: d.call_ref, disposition: d.disposition };
    if (d.notes.trim()) message.notes = d.notes;
    if (d.callback_at) {
      message.callback_at = new Date(d.callback_at).toISOString();
      message.callback_mine = d.callback_mine;
    }
    if (send(message)) {
      desk.saving = true;
      status("Saving…");
    }
  }

  function saved(callRef) {
    localStorage.removeItem(DRAFT + callRef);
    if (desk.wrapup === callRef) clearWrapup();
    hideContact();
    desk.call = null;
    status("Saved.");
    restoreDraft();
    showCallbacks();
  }

  function loadDraft(callRef) {
    try {
      return JSON.parse(localStorage.getItem(DRAFT + callRef));
    } catch {
      return null;
    }
  }

  function storeDraft(draft) {
    draft.touched = Date.now();
    localStorage.setItem(DRAFT + draft.call_ref, JSON.stringify(draft));
  }

  // Shows the newest unsaved draft, e.g. after a reload during wrap-up.
  function restoreDraft() {
    let newest = null;
    for (let i = 0; i < localStorage.length; i++) {
      const key = localStorage.key(i);
      if (!key.startsWith(DRAFT)) continue;
      const d = loadDraft(key.slice(DRAFT.length));
      if (d && (!newest || (d.touched || 0) > (newest.touched || 0))) newest = d;
    }
    if (newest && !desk.wrapup) {
      showWrapup(newest, true);
      status("An unsaved wrap-up was restored; save or discard it.");
    }
  }

  // ---- Page furniture ----

  function status(text, isError = false) {
    const el = $("status");
    el.textContent = text;
    el.classList.toggle("error", isError);
  }

  function setLink(state, label) {
    $("link").dataset.state = state;
    $("link").textContent = label;
  }

  function setAudio(state, label) {
    $("audio").dataset.state = state;
    $("audio").textContent = label;
  }

  function clock(ms) {
    const s = Math.max(0, Math.floor(ms / 1000));
    const h = Math.floor(s / 3600);
    const mm = String(Math.floor((s % 3600) / 60));
    const ss = String(s % 60).padStart(2, "0");
    return h ? `${h}:${mm.padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
  }

  function tick() {
    const now = Date.now();
    $("state-time").textContent = clock(now - desk.stateSince);
    const c = desk.call;
    $("call-time").textContent = c ? clock((c.ended || now) - c.since) : "—";
    $("wrapup-left").textContent = desk.wrapup && desk.wrapDue ? `${clock(desk.wrapDue - now)} left` : "";
  }

  function ready() {
    const id = Number($("campaign").value);
    if (!id) {
      status("Choose a campaign first.", true);
      return;
    }
    if (desk.wrapup) {
      status("Save the wrap-up before going ready.", true);
      return;
    }
    localStorage.setItem(CAMPAIGN, String(id));
    send({ type: "ready", campaign_id: id });
  }

  function pause() {
    send({ type: "pause", code: $("pause-code").value });
  }

  // "Leave voicemail": offered on calls the campaign placed when it has a
  // message; the service leaves it after the machine's greeting and the
  // agent is free at once, with no wrap-up.
  function showVoicemail(offered) {
    $("voicemail").hidden = !offered;
    $("voicemail").disabled = !offered;
  }

  function leaveVoicemail() {
    if (desk.state !== "in_call" || $("voicemail").hidden || $("voicemail").disabled) return;
    if (send({ type: "leave_voicemail" })) {
      $("voicemail").disabled = true;
      status("Leaving the voicemail message…");
    }
  }

  function voicemailLeft(callRef) {
    if (desk.call && desk.call.call_ref === callRef) {
      hideContact();
      desk.call = null;
    }
    showVoicemail(false);
    status("The voicemail message is being left; you are free for the next call.");
  }

  function hangup() {
    if (desk.state === "in_call" || desk.state === "dialling") send({ type: "hangup" });
  }

  function typing(target) {
    return target instanceof HTMLElement &&
      (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
  }

  function shortcut(ev) {
    if (ev.key === "Enter" && (ev.ctrlKey || ev.metaKey)) {
      ev.preventDefault();
      if (dialcrmCallbackEdit.contains(ev.target)) dialcrmCallbackEdit.save();
      else if (desk.edit && ev.target instanceof Node && $("card-form").contains(ev.target)) saveEdit();
      else save();
      return;
    }
    if (ev.ctrlKey || ev.metaKey || ev.altKey || ev.repeat || typing(ev.target)) return;
    if (/^[0-9*#]$/.test(ev.key) && desk.state === "in_call") {
      ev.preventDefault();
      digit(ev.key);
      return;
    }
    const focusDial = () => $("manual").number.focus();
    const action = {
      r: ready, p: pause, h: hangup, m: toggleMute, o: toggleHold, e: toggleRecording, d: focusDial,
      c: openEdit, v: leaveVoicemail,
    }[ev.key.toLowerCase()];
    if (action) {
      ev.preventDefault();
      action();
    }
  }

  $("ready").addEventListener("click", ready);
  $("audio-choice").addEventListener("change", chooseAudio);
  $("pause").addEventListener("click", pause);
  $("hangup").addEventListener("click", hangup);
  $("voicemail").addEventListener("click", leaveVoicemail);
  $("preview-call").addEventListener("click", () => {
    if (send({ type: "preview_call" })) $("preview-actions").hidden = true;
  });
  $("preview-skip").addEventListener("click", () => send({ type: "preview_skip" }));
  $("mute").addEventListener("click", toggleMute);
  $("hold").addEventListener("click", toggleHold);
  $("record").addEventListener("click", toggleRecording);
  $("keypad").addEventListener("click", (ev) => {
    const d = ev.target instanceof HTMLElement ? ev.target.dataset.digit : null;
    if (d) digit(d);
  });
  $("manual").addEventListener("submit", (ev) => {
    ev.preventDefault();
    dial(false);
  });
  $("dial-anyway").addEventListener("click", () => dial(true));
  $("contact-edit").addEventListener("click", openEdit);
  $("card-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    saveEdit();
  });
  $("card-form").addEventListener("keydown", escapeEdit);
  $("card-cancel").addEventListener("click", cancelEdit);
  $("card-conflict-reload").addEventListener("click", reloadCard);
  $("wrapup").addEventListener("submit", (ev) => {
    ev.preventDefault();
    save();
  });
  $("wrapup").addEventListener("input", () => {
    if (desk.wrapup) storeDraft(formDraft());
  });
  $("discard").addEventListener("click", () => {
    if (desk.wrapup) localStorage.removeItem(DRAFT + desk.wrapup);
    clearWrapup();
    status("Draft discarded.");
    restoreDraft();
  });
  document.addEventListener("keydown", shortcut);
  // A callback's contact was corrected: its name in the list may have
  // changed. The focus stays on its Edit button as the list is drawn anew.
  document.addEventListener("dialcrm:callback-contact-saved", async (ev) => {
    const inList = $("callbacks").contains(document.activeElement);
    await showCallbacks();
    const again = document.querySelector(`#callbacks button[data-contact-id="${ev.detail.id}"]`);
    if (inList && again) again.focus();
  });
  // A blocked autoplay starts on the first click.
  document.addEventListener("click", () => $("remote").play().catch(() => {}), { once: true });
  setInterval(tick, 1000);
  controls({ held: false, recording: "off" });
  restoreDraft();
  connect();
})();
