// Opens the microphone (the fake device plays TONE.wav), creates the agent's
// peer connection and returns its SDP offer. Remote audio is kept for later.
(async () => {
  const mic = await navigator.mediaDevices.getUserMedia({ audio: true });
  const pc = new RTCPeerConnection();
  window.agentPc = pc;
  window.remoteStream = new Promise((resolve) => {
    pc.ontrack = (e) => resolve(e.streams[0] || new MediaStream([e.track]));
  });
  for (const track of mic.getTracks()) pc.addTrack(track, mic);
  await pc.setLocalDescription(await pc.createOffer());
  return pc.localDescription.sdp;
})()
