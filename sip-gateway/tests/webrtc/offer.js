// Opens the microphone (the fake device plays TONE.wav), creates the agent's
// peer connection and returns its SDP offer. Remote audio is kept for later.
// Audio processing is off: noise suppression and gain control would fade a
// steady test tone within seconds.
(async () => {
  const mic = await navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
  });
  const pc = new RTCPeerConnection();
  window.agentPc = pc;
  // Every state change with its time, for a failing test to show.
  window.stateLog = [];
  const log = (what, state) => window.stateLog.push(`${Math.round(performance.now())} ${what} ${state}`);
  pc.onconnectionstatechange = () => log('connection', pc.connectionState);
  pc.oniceconnectionstatechange = () => log('ice', pc.iceConnectionState);
  window.remoteStream = new Promise((resolve) => {
    pc.ontrack = (e) => resolve(e.streams[0] || new MediaStream([e.track]));
  });
  for (const track of mic.getTracks()) pc.addTrack(track, mic);
  await pc.setLocalDescription(await pc.createOffer());
  return pc.localDescription.sdp;
})()
