// Measures how loud each of window.toneHz is in the remote track: every
// 50 ms for a second and a half, the analyser's level at each frequency
// (the loudest bin within 20 Hz of it). Returns, per frequency, the median
// level in dB, and the number of samples taken. The analyser is made once
// per page and kept, so measuring again starts at once.
(async () => {
  if (!window.toneAnalyser) {
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
    window.toneSink = sink;
    window.toneAnalyser = { ctx, analyser };
  }
  const { ctx, analyser } = window.toneAnalyser;
  const bins = new Float32Array(analyser.frequencyBinCount);
  const binHz = ctx.sampleRate / analyser.fftSize;
  const levels = window.toneHz.map(() => []);
  for (let i = 0; i < 30; i++) {
    await new Promise((r) => setTimeout(r, 50));
    analyser.getFloatFrequencyData(bins);
    window.toneHz.forEach((hz, n) => {
      const lo = Math.max(1, Math.floor((hz - 20) / binHz));
      const hi = Math.min(bins.length - 1, Math.ceil((hz + 20) / binHz));
      let best = -Infinity;
      for (let k = lo; k <= hi; k++) best = Math.max(best, bins[k]);
      levels[n].push(Number.isFinite(best) ? best : -200);
    });
  }
  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    return s[Math.floor(s.length / 2)];
  };
  const out = {};
  window.toneHz.forEach((hz, n) => { out[hz] = median(levels[n]); });
  return JSON.stringify(out);
})()
