"use strict";
// Shared by the role pages: who am I, log out, and each page's data.

async function api(path, options = {}) {
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

function text(tag, value) {
  const el = document.createElement(tag);
  el.textContent = value;
  return el;
}

async function showCampaigns() {
  const ul = document.getElementById("campaigns");
  if (!ul) return;
  ul.replaceChildren(...(await api("/api/campaigns")).map((c) =>
    text("li", `${c.name} — ${c.status} — caller ID ${c.caller_id}`)));
}

async function showLists() {
  const ul = document.getElementById("lists");
  if (!ul) return;
  ul.replaceChildren(...(await api("/api/lists")).map((l) =>
    text("li", `${l.name} — ${l.size} contacts`)));
}

async function showAdmin() {
  const account = document.getElementById("account");
  if (!account) return;
  const a = await api("/api/account");
  account.textContent =
    `${a.name}: ${a.agents_logged_in} of ${a.seats} agent seats in use`;
  const tbody = document.querySelector("#users tbody");
  tbody.replaceChildren(...(await api("/api/users")).map((u) => {
    const tr = document.createElement("tr");
    tr.append(text("td", u.username), text("td", u.role), text("td", u.active ? "yes" : "no"));
    return tr;
  }));
  const form = document.getElementById("add-user");
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    const result = document.getElementById("add-user-result");
    try {
      await api("/api/users", {
        method: "POST",
        body: JSON.stringify({
          username: form.username.value,
          password: form.password.value,
          role: form.role.value,
        }),
      });
      result.textContent = "Added.";
      form.reset();
      showAdmin();
    } catch (e) {
      result.textContent = e.message;
    }
  };
}

async function main() {
  const me = await api("/api/me");
  document.getElementById("who").textContent = `${me.username} (${me.role}, ${me.account})`;
  document.getElementById("logout").addEventListener("click", async () => {
    await api("/api/logout", { method: "POST" });
    window.location.assign("/login");
  });
  await Promise.all([showCampaigns(), showLists(), showAdmin()]);
}

main().catch((e) => console.error(e));
