// Starts watching the remote track and returns at once: every 20 ms, the
// loudest FFT bin's frequency and level go into window.peakLog (the last
// ten seconds), with the time since the watch began, for a test to read
// later. For sounds too short to catch with listen.js's polling.
(async () => {
  const stream = await window.remoteStream;
  const sink = new Audio();
  sink.muted = true;
  sink.srcObject = stream;
  await sink.play().catch(() => {});
  const ctx = new AudioContext();
  await ctx.resume();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 1024;
  analyser.smoothingTimeConstant = 0;
  ctx.createMediaStreamSource(stream).connect(analyser);
  const bins = new Float32Array(analyser.frequencyBinCount);
  const start = performance.now();
  window.peakLog = [];
  setInterval(() => {
    analyser.getFloatFrequencyData(bins);
    let best = 1;
    for (let k = 2; k < bins.length; k++) if (bins[k] > bins[best]) best = k;
    window.peakLog.push({
      ms: Math.round(performance.now() - start),
      hz: (best * ctx.sampleRate) / analyser.fftSize,
      db: bins[best],
    });
    if (window.peakLog.length > 500) window.peakLog.shift();
  }, 20);
  return "watching";
})()
