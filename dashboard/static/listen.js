"use strict";
// Silent listening from the wallboard's live calls. The page holds one
// receive-only WebRTC connection (the server's listening leg) and points it
// at the call the supervisor picks; it never sends audio. The server checks
// the role and the account again on every request.

const listening = { pc: null, call: null };
// The wallboard redraws its rows every second; the same cell is handed back
// while its button stays the same, so a click in progress is not lost.
const listenCells = new Map();

// The cell of a live call's row: Listen for a call with an agent on it,
// Stop for the call being heard.
function listenCell(ref, call) {
  const mode = listening.call === ref ? "stop" : call.state === "connected" ? "listen" : "";
  const kept = listenCells.get(ref);
  if (kept && kept.mode === mode) return kept.td;
  const td = document.createElement("td");
  if (mode === "stop") td.append(listenButton("Stop", listenStop));
  if (mode === "listen") td.append(listenButton("Listen", () => listenTo(ref)));
  listenCells.set(ref, { mode, td });
  return td;
}

function listenButton(label, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.dataset.listen = label.toLowerCase();
  b.addEventListener("click", onClick);
  return b;
}

function listenStatus(text) {
  document.getElementById("listen-status").textContent = text;
}

async function listenFetch(path, options = {}) {
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

async function listenTo(ref) {
  listenStatus("Connecting the listening audio…");
  try {
    const state = listening.pc && listening.pc.connectionState;
    if (!["new", "connecting", "connected"].includes(state)) await listenConnect();
    const path = `/api/listen/${encodeURIComponent(ref)}`;
    try {
      await listenFetch(path, { method: "POST" });
    } catch (e) {
      // 421: another node holds the call; a new leg is made there.
      if (e.status !== 421) throw e;
      await listenConnect(`${path}/leg`);
    }
    listening.call = ref;
    listenStatus(`Listening to call ${ref.slice(0, 8)}; you cannot be heard.`);
  } catch (e) {
    listenStatus(`Could not listen: ${e.message}`);
  }
  if (typeof render === "function") render();
}

async function listenStop() {
  listening.call = null;
  const pc = listening.pc;
  listening.pc = null;
  if (pc) pc.close();
  const audio = document.getElementById("listen-audio");
  audio.srcObject = null;
  audio.dataset.state = "closed";
  try {
    await listenFetch("/api/listen", { method: "DELETE" });
    listenStatus("Stopped listening.");
  } catch (e) {
    listenStatus(`Could not stop: ${e.message}`);
  }
  if (typeof render === "function") render();
}

// Sets up a fresh connection; the server makes a new leg for every offer,
// on this node (`/api/listen`) or where the call is (`/api/listen/{ref}/leg`).
async function listenConnect(path = "/api/listen") {
  if (listening.pc) listening.pc.close();
  const pc = new RTCPeerConnection();
  listening.pc = pc;
  const audio = document.getElementById("listen-audio");
  pc.addTransceiver("audio", { direction: "recvonly" });
  pc.ontrack = (e) => {
    audio.srcObject = e.streams[0] || new MediaStream([e.track]);
    audio.play().catch(() => listenStatus("Click anywhere on the page to hear the call."));
  };
  pc.onconnectionstatechange = () => {
    if (listening.pc === pc) audio.dataset.state = pc.connectionState;
  };
  await pc.setLocalDescription(await pc.createOffer());
  await listenGathered(pc);
  const answer = await listenFetch(path, {
    method: "POST",
    body: JSON.stringify({ sdp: pc.localDescription.sdp }),
  });
  await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
}

// Resolves when ICE gathering is complete (the server takes no trickled candidates).
function listenGathered(pc) {
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

// A call that leaves the board has ended; the connection stays up for the next one.
setInterval(() => {
  if (typeof board !== "object") return;
  for (const ref of listenCells.keys()) if (!board.calls.has(ref)) listenCells.delete(ref);
  if (listening.call && !board.calls.has(listening.call)) {
    listening.call = null;
    listenStatus("The call ended.");
  }
}, 1000);
