"use strict";
// Listening and coaching from the wallboard's live calls. The page holds one
// WebRTC connection (the server's listening leg) and points it at the call
// the supervisor picks, in a mode: listen (nobody hears the supervisor),
// whisper (the agent does), barge (the agent and the customer do) or take
// over (the supervisor replaces the agent). The connection sends from the
// start, so a change of mode is one request and no new offer; the
// microphone is opened at the first mode that needs it and muted while
// only listening. The server checks the role and the account again on
// every request.

const listening = { pc: null, call: null, mode: null, sender: null, mic: null };
const LISTEN_MODES = [
  ["listen", "Listen"],
  ["whisper", "Whisper"],
  ["barge", "Barge"],
  ["takeover", "Take over"],
];
const MODE_WORDS = {
  listen: "listening; you cannot be heard",
  whisper: "whispering; only the agent hears you",
  barge: "barging in; the agent and the customer hear you",
  takeover: "talking to the customer; the agent has left the call",
};
// The wallboard redraws its rows every second; the same cell is handed back
// while its buttons stay the same, so a click in progress is not lost.
const listenCells = new Map();

// The cell of a live call's row: the modes for a call with an agent on it,
// the current one pressed, and Stop (Hang up once taken over) for the call
// being heard.
function listenCell(ref, call) {
  const heard = listening.call === ref;
  const mode = heard ? listening.mode : call.state === "connected" ? "offer" : "";
  const kept = listenCells.get(ref);
  if (kept && kept.mode === mode) return kept.td;
  const td = document.createElement("td");
  td.dataset.mode = heard ? listening.mode : "";
  if (mode === "takeover") {
    td.append(listenButton("Hang up", "stop", listenStop));
  } else if (mode) {
    for (const [m, label] of LISTEN_MODES) {
      const b = listenButton(label, m, () => listenTo(ref, m));
      if (heard) b.setAttribute("aria-pressed", String(m === listening.mode));
      td.append(b);
    }
    if (heard) td.append(listenButton("Stop", "stop", listenStop));
  }
  listenCells.set(ref, { mode, td });
  return td;
}

function listenButton(label, name, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  b.dataset.listen = name;
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

async function listenTo(ref, mode = "listen") {
  listenStatus(mode === "listen" ? "Connecting the listening audio…" : "Connecting your audio…");
  try {
    const state = listening.pc && listening.pc.connectionState;
    const fresh = !["new", "connecting", "connected"].includes(state);
    if (fresh) await listenConnect();
    // Muted before the server is told to only listen, unmuted after it is
    // told whom to send the voice to.
    if (mode === "listen") listenMicrophone(false);
    else await listenOpenMicrophone();
    const path = `/api/listen/${encodeURIComponent(ref)}`;
    try {
      await listenFetch(path, { method: "POST", body: JSON.stringify({ mode }) });
    } catch (e) {
      // 421: another node holds the call and the leg is not there; a new leg is made there.
      if (e.status !== 421) throw e;
      await listenConnect(`${path}/leg`, mode);
    }
    if (mode !== "listen") listenMicrophone(true);
    listening.call = ref;
    listening.mode = mode;
    listenStatus(`Call ${ref.slice(0, 8)}: ${MODE_WORDS[mode]}.`);
  } catch (e) {
    listenStatus(`Could not ${mode === "takeover" ? "take over" : mode}: ${e.message}`);
  }
  if (typeof render === "function") render();
}

async function listenStop() {
  listening.call = null;
  listening.mode = null;
  const pc = listening.pc;
  listening.pc = null;
  listening.sender = null;
  if (pc) pc.close();
  if (listening.mic) listening.mic.getTracks().forEach((t) => t.stop());
  listening.mic = null;
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

// Opens the microphone once and puts it on the connection's sending side,
// which needs no new offer.
async function listenOpenMicrophone() {
  if (!listening.mic) {
    listening.mic = await navigator.mediaDevices.getUserMedia({
      audio: listenProcessing(),
    });
    listenMicrophone(false);
  }
  const track = listening.mic.getAudioTracks()[0];
  if (listening.sender && listening.sender.track !== track) await listening.sender.replaceTrack(track);
}

// Audio processing as the page's address asks: `?processing=off` turns it off.
function listenProcessing() {
  const on = new URLSearchParams(window.location.search).get("processing") !== "off";
  return { echoCancellation: on, noiseSuppression: on, autoGainControl: on };
}

function listenMicrophone(on) {
  if (listening.mic) listening.mic.getAudioTracks().forEach((t) => { t.enabled = on; });
}

// Sets up a fresh connection; the server makes a new leg for every offer,
// on this node (`/api/listen`) or where the call is (`/api/listen/{ref}/leg`).
async function listenConnect(path = "/api/listen", mode) {
  if (listening.pc) listening.pc.close();
  const pc = new RTCPeerConnection();
  listening.pc = pc;
  const audio = document.getElementById("listen-audio");
  const track = listening.mic ? listening.mic.getAudioTracks()[0] : null;
  // Sending from the start, with no track until a mode needs the microphone.
  const transceiver = pc.addTransceiver(track || "audio", { direction: "sendrecv" });
  listening.sender = transceiver.sender;
  pc.ontrack = (e) => {
    audio.srcObject = e.streams[0] || new MediaStream([e.track]);
    audio.play().catch(() => listenStatus("Click anywhere on the page to hear the call."));
  };
  pc.onconnectionstatechange = () => {
    if (listening.pc === pc) audio.dataset.state = pc.connectionState;
  };
  await pc.setLocalDescription(await pc.createOffer());
  await listenGathered(pc);
  const body = { sdp: pc.localDescription.sdp };
  if (mode) body.mode = mode;
  const answer = await listenFetch(path, { method: "POST", body: JSON.stringify(body) });
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
    listening.mode = null;
    listenMicrophone(false);
    listenStatus("The call ended.");
  }
}, 1000);
