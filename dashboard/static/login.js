"use strict";
document.getElementById("login").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const form = ev.target;
  const error = document.getElementById("error");
  error.hidden = true;
  const body = JSON.stringify({
    username: form.username.value,
    password: form.password.value,
  });
  try {
    const r = await fetch("/api/login", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body,
    });
    const data = await r.json().catch(() => ({}));
    if (r.ok) {
      window.location.assign(data.home);
    } else {
      error.textContent = data.error || `Login failed (${r.status})`;
      error.hidden = false;
    }
  } catch (e) {
    error.textContent = "The server cannot be reached.";
    error.hidden = false;
  }
});
