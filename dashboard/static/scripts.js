"use strict";
// The supervisor's call-script editor: one campaign's sections (a title and
// a body in the script syntax), a preview rendered by the server with a
// made-up or chosen contact, and saving. The server checks everything again
// and names unknown merge fields.

const scriptEditor = { campaign: null, wired: false };

function sectionEditor(section) {
  const box = document.createElement("fieldset");
  box.className = "script-editor-section";
  const title = document.createElement("input");
  title.name = "title";
  title.maxLength = 100;
  title.placeholder = "Section title";
  title.value = section.title || "";
  const body = document.createElement("textarea");
  body.name = "body";
  body.rows = 6;
  body.maxLength = 10000;
  body.value = section.body || "";
  const remove = document.createElement("button");
  remove.type = "button";
  remove.textContent = "Remove section";
  remove.addEventListener("click", () => box.remove());
  const titleLabel = document.createElement("label");
  titleLabel.append("Title ", title);
  const bodyLabel = document.createElement("label");
  bodyLabel.append("Text ", body);
  box.append(titleLabel, bodyLabel, remove);
  return box;
}

function draftSections() {
  return [...document.querySelectorAll("#script-sections .script-editor-section")].map((box) => ({
    title: box.querySelector("[name=title]").value,
    body: box.querySelector("[name=body]").value,
  }));
}

function scriptStatus(message, isError = false) {
  const el = document.getElementById("script-status");
  el.textContent = message;
  el.classList.toggle("error", isError);
}

async function loadScripts() {
  const select = document.getElementById("script-campaign");
  if (!scriptEditor.wired) {
    scriptEditor.wired = true;
    select.addEventListener("change", () => loadScript(select.value));
    document.getElementById("script-add").addEventListener("click", () =>
      document.getElementById("script-sections").append(sectionEditor({})));
    document.getElementById("script-preview-button").addEventListener("click", previewScript);
    document.getElementById("script-save").addEventListener("click", saveScript);
  }
  try {
    const campaigns = await request("/api/campaigns");
    const wanted = select.value;
    select.replaceChildren(...campaigns.map((c) => new Option(c.name, c.id)));
    if (campaigns.some((c) => String(c.id) === wanted)) select.value = wanted;
    if (campaigns.length === 0) {
      scriptStatus("No campaign yet.");
      return;
    }
    await loadScript(select.value);
  } catch (e) {
    scriptStatus(e.message, true);
  }
}

async function loadScript(id) {
  scriptEditor.campaign = id;
  try {
    const saved = await request(`/api/campaigns/${id}/script`);
    const sections = saved.sections.length ? saved.sections : [{ title: "Opening", body: "" }];
    document.getElementById("script-sections").replaceChildren(...sections.map(sectionEditor));
    document.getElementById("script-preview").replaceChildren();
    scriptStatus(saved.updated_at
      ? `Saved ${new Date(saved.updated_at).toLocaleString()}.`
      : "This campaign has no script yet.");
  } catch (e) {
    scriptStatus(e.message, true);
  }
}

async function previewScript() {
  const body = { sections: draftSections() };
  const contact = document.getElementById("script-contact").value.trim();
  if (contact) body.contact_id = Number(contact);
  try {
    const preview = await request(`/api/campaigns/${scriptEditor.campaign}/script/preview`, {
      method: "POST",
      body: JSON.stringify(body),
    });
    dialcrmScript.render(document.getElementById("script-preview"), preview);
    scriptStatus(preview.sample ? "Preview with a made-up contact." : `Preview with contact ${contact}.`);
  } catch (e) {
    scriptStatus(e.message, true);
  }
}

async function saveScript() {
  try {
    const saved = await request(`/api/campaigns/${scriptEditor.campaign}/script`, {
      method: "PUT",
      body: JSON.stringify({ sections: draftSections() }),
    });
    if (saved.sections.length) await previewScript();
    scriptStatus(saved.sections.length ? "Saved." : "Saved: the campaign has no script now.");
  } catch (e) {
    scriptStatus(e.message, true);
  }
}
