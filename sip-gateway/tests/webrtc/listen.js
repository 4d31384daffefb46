// Listens to the remote track with an AnalyserNode and returns, every 100 ms
// for two seconds, the loudest FFT bin's frequency and level, plus the codec
// and inbound-rtp counters from getStats().
(async () => {
  const stream = await window.remoteStream;
  // Chromium only feeds a remote WebRTC track into WebAudio while a media
  // element also plays it.
  const sink = new Audio();
  sink.muted = true;
  sink.srcObject = stream;
  await sink.play().catch(() => {});
  const ctx = new AudioContext();
  await ctx.resume();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 4096;
  analyser.smoothingTimeConstant = 0;
  ctx.createMediaStreamSource(stream).connect(analyser);
  const bins = new Float32Array(analyser.frequencyBinCount);
  const peaks = [];
  for (let i = 0; i < 20; i++) {
    await new Promise((r) => setTimeout(r, 100));
    analyser.getFloatFrequencyData(bins);
    let best = 1;
    for (let k = 2; k < bins.length; k++) if (bins[k] > bins[best]) best = k;
    peaks.push({ hz: (best * ctx.sampleRate) / analyser.fftSize, db: bins[best] });
  }
  let inbound = null;
  let codec = null;
  const stats = await window.agentPc.getStats();
  stats.forEach((s) => {
    if (s.type === "inbound-rtp" && s.kind === "audio") inbound = s;
  });
  if (inbound) codec = stats.get(inbound.codecId)?.mimeType ?? null;
  return JSON.stringify({
    peaks,
    codec,
    audioLevel: inbound?.audioLevel ?? 0,
    totalSamplesReceived: inbound?.totalSamplesReceived ?? 0,
  });
})()
