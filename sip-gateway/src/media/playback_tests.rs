use std::io::Cursor;

use super::*;
use crate::media::rtp::RtpPacket;
use crate::media::tone::{dominant_frequency, goertzel_power, sine};

const CANDIDATES: [f64; 5] = [440.0, 1000.0, 2000.0, 2500.0, 3000.0];

fn wav(spec: hound::WavSpec, samples: &[i16]) -> Vec<u8> {
    let mut buf = Cursor::new(Vec::new());
    let mut w = hound::WavWriter::new(&mut buf, spec).unwrap();
    for &s in samples {
        w.write_sample(s).unwrap();
    }
    w.finalize().unwrap();
    buf.into_inner()
}

fn mono16(rate: u32) -> hound::WavSpec {
    hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    }
}

fn config() -> PlayerConfig {
    PlayerConfig {
        codec: G711::Pcmu,
        payload_type: 0,
        ssrc: 7,
        initial_sequence: 100,
        initial_timestamp: 1000,
        looping: false,
    }
}

#[test]
fn reads_8k_as_is_and_downsamples_16k_and_48k() {
    for rate in [8000, 16000, 48000] {
        let tone = sine(1000.0, 10000, rate, rate as usize);
        let pcm = read_wav(Cursor::new(wav(mono16(rate), &tone))).unwrap();
        assert_eq!(pcm.len(), 8000, "{rate}");
        assert_eq!(
            dominant_frequency(&pcm, &CANDIDATES, 8000, 0.01),
            Some(1000.0)
        );
    }
}

#[test]
fn downsampling_filters_out_what_would_alias() {
    // 6 kHz at 16 kHz would fold to 2 kHz without the low-pass.
    let tone = sine(6000.0, 10000, 16000, 16000);
    let pcm = read_wav(Cursor::new(wav(mono16(16000), &tone))).unwrap();
    let plain = sine(2000.0, 10000, 8000, 8000);
    assert!(goertzel_power(&pcm, 2000.0, 8000) < goertzel_power(&plain, 2000.0, 8000) / 100.0);
}

#[test]
fn rejects_other_formats_clearly() {
    let stereo = hound::WavSpec {
        channels: 2,
        ..mono16(8000)
    };
    let err = read_wav(Cursor::new(wav(stereo, &[0, 0]))).unwrap_err();
    assert!(matches!(err, PlaybackError::Channels(2)));
    let err = read_wav(Cursor::new(wav(mono16(44100), &[0]))).unwrap_err();
    assert_eq!(
        err.to_string(),
        "WAV sample rate 44100 Hz is not supported; use 8000, 16000 or 48000"
    );
    let mut buf = Cursor::new(Vec::new());
    let float = hound::WavSpec {
        bits_per_sample: 32,
        sample_format: hound::SampleFormat::Float,
        ..mono16(8000)
    };
    let mut w = hound::WavWriter::new(&mut buf, float).unwrap();
    w.write_sample(0.5f32).unwrap();
    w.finalize().unwrap();
    let err = read_wav(Cursor::new(buf.into_inner())).unwrap_err();
    assert!(matches!(err, PlaybackError::SampleFormat { bits: 32, .. }));
    assert!(matches!(
        read_wav(Cursor::new(wav(mono16(8000), &[]))),
        Err(PlaybackError::Empty)
    ));
    assert!(matches!(
        read_wav(Cursor::new(b"RIFF garbage".to_vec())),
        Err(PlaybackError::Wav(_))
    ));
}

#[test]
fn plays_one_packet_per_20ms_then_finishes() {
    let t0 = Instant::now();
    let tone: Arc<[i16]> = sine(440.0, 8000, 8000, 400).into();
    let mut player = Player::new(tone.clone(), config(), t0);
    let mut packets = Vec::new();
    let mut now = t0;
    while let Some(due) = player.poll_timeout() {
        assert_eq!(due, now);
        player.handle_timeout(now);
        while let Some(f) = player.poll_transmit() {
            packets.push(f);
        }
        now += FRAME_INTERVAL;
    }
    assert_eq!(packets.len(), 3); // 400 samples: 160 + 160 + 80 and silence
    assert_eq!(player.poll_event(), Some(PlayerEvent::Finished));
    let mut decoded = Vec::new();
    for (i, f) in packets.iter().enumerate() {
        let p = RtpPacket::parse(f.as_bytes()).unwrap();
        assert_eq!(p.marker(), i == 0);
        assert_eq!(p.sequence(), 100 + i as u16);
        assert_eq!(p.timestamp(), 1000 + 160 * i as u32);
        assert_eq!(p.payload().len(), 160);
        decoded.extend(p.payload().iter().map(|&b| G711::Pcmu.decode_sample(b)));
    }
    assert!(decoded[400..].iter().all(|&s| s == 0));
    assert_eq!(
        dominant_frequency(&decoded[..400], &CANDIDATES, 8000, 0.001),
        Some(440.0)
    );
}

#[test]
fn a_late_tick_catches_up_briefly_then_skips_ahead() {
    let t0 = Instant::now();
    let samples: Arc<[i16]> = vec![100; 160 * 100].into();
    let mut player = Player::new(samples, config(), t0);
    player.handle_timeout(t0 + Duration::from_millis(200));
    let burst: Vec<_> = std::iter::from_fn(|| player.poll_transmit()).collect();
    assert_eq!(burst.len(), MAX_BURST);
    assert_eq!(player.poll_timeout(), Some(t0 + Duration::from_millis(220)));
    player.handle_timeout(t0 + Duration::from_millis(220));
    let next = player.poll_transmit().unwrap();
    let p = RtpPacket::parse(next.as_bytes()).unwrap();
    assert_eq!(p.sequence(), 100 + MAX_BURST as u16);
    assert_eq!(p.timestamp(), 1000 + 160 * 11);
}

#[test]
fn looping_never_finishes_and_stop_ends_silently() {
    let t0 = Instant::now();
    let samples: Arc<[i16]> = vec![0; 200].into();
    let mut player = Player::new(
        samples,
        PlayerConfig {
            looping: true,
            ..config()
        },
        t0,
    );
    for i in 0..10 {
        player.handle_timeout(t0 + FRAME_INTERVAL * i);
    }
    assert_eq!(std::iter::from_fn(|| player.poll_transmit()).count(), 10);
    assert_eq!(player.poll_event(), None);
    player.stop();
    assert_eq!(player.poll_timeout(), None);
    assert_eq!(player.poll_event(), None);
}
