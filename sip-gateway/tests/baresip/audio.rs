//! The WAV files baresip reads and writes: the tone its `aufile` source sends, and what it
//! heard, as its `sndfile` filter dumps it.
#![allow(dead_code)]

use std::path::Path;
use std::time::Duration;

/// How long the tone baresip sends lasts: aufile ends the call at the end of its file.
const TONE_LENGTH: Duration = Duration::from_secs(30);

/// Writes the WAV of baresip's `tone` (Hz) in `dir`, makes `dir/snd` for what it hears, and
/// returns the lines of its `config` that make it send the one and dump the other there.
pub fn tone_out_dump_in(dir: &Path, tone: f64) -> String {
    std::fs::create_dir_all(dir.join("snd")).unwrap();
    let wav = dir.join("tone.wav");
    write_tone(&wav, tone, TONE_LENGTH);
    // aubridge to a device nobody opens plays nothing and needs no sound card.
    format!(
        "audio_player aubridge,nowhere\n\
         audio_source aufile,{wav}\n\
         audio_alert aubridge,nowhere\n\
         module aufile.so\n\
         module aubridge.so\n\
         module sndfile.so\n\
         snd_path {snd}\n",
        wav = wav.display(),
        snd = dir.join("snd").display(),
    )
}

/// Writes a mono 8 kHz WAV of a sine at `frequency`.
pub fn write_tone(path: &Path, frequency: f64, length: Duration) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).unwrap();
    let count = (length.as_secs_f64() * 8000.0) as usize;
    for sample in sip_gateway::media::tone::sine(frequency, 8000, 8000, count) {
        writer.write_sample(sample).unwrap();
    }
    writer.finalize().unwrap();
}

/// Returns the samples sndfile decoded from a call (what baresip heard) in `snd`, its
/// `snd_path`, once it has written some; `None` when none come within five seconds.
pub async fn heard(snd: &Path) -> Option<Vec<i16>> {
    // sndfile names its dumps after the call; the decoder's ends in "dec.wav".
    for _ in 0..100 {
        let found = std::fs::read_dir(snd)
            .unwrap()
            .flatten()
            .find(|e| e.file_name().to_string_lossy().ends_with("dec.wav"));
        if let Some(entry) = found {
            let samples = wav_samples(&entry.path());
            if !samples.is_empty() {
                return Some(samples);
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Reads the 16-bit samples of a WAV's data chunk, whatever sizes its header claims
/// (a file still open has not had them written yet).
fn wav_samples(path: &Path) -> Vec<i16> {
    let bytes = std::fs::read(path).unwrap_or_default();
    let Some(start) = bytes.windows(4).position(|w| w == b"data") else {
        return Vec::new();
    };
    bytes
        .get(start + 8..)
        .unwrap_or_default()
        .chunks_exact(2)
        .map(|b| i16::from_le_bytes([b[0], b[1]]))
        .collect()
}
