// As offer.js, but the browser insists on Opus: the transceiver's codec
// preferences hold Opus alone, so the offer carries no PCMU or PCMA.
(async () => {
  const mic = await navigator.mediaDevices.getUserMedia({
    audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
  });
  const pc = new RTCPeerConnection();
  window.agentPc = pc;
  window.remoteStream = new Promise((resolve) => {
    pc.ontrack = (e) => resolve(e.streams[0] || new MediaStream([e.track]));
  });
  for (const track of mic.getTracks()) pc.addTrack(track, mic);
  const opus = RTCRtpReceiver.getCapabilities("audio").codecs.filter(
    (c) => c.mimeType.toLowerCase() === "audio/opus",
  );
  for (const t of pc.getTransceivers()) t.setCodecPreferences(opus);
  await pc.setLocalDescription(await pc.createOffer());
  return pc.localDescription.sdp;
})()
