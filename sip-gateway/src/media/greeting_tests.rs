use std::time::{Duration, Instant};

use super::*;
use crate::media::amd::{spoken_words, voiced_words};
use crate::media::tone::sine;

const MS: fn(u64) -> Duration = Duration::from_millis;

fn at_8k(d: Duration) -> usize {
    d.as_millis() as usize * 8
}

/// Speech as a tone detector hears it: sound, but never one tone.
fn voice(words: u32, word: Duration, gap: Duration) -> Vec<i16> {
    let len = (word + gap).as_millis() as usize * 8 * words as usize;
    voiced_words(words, word, gap, len)
}

/// Runs audio through a default detector in 20 ms frames; returns how the
/// greeting ended and after how many milliseconds of audio.
fn listen(audio: &[i16]) -> Option<(GreetingEnded, usize)> {
    let mut d = GreetingEnd::new(GreetingConfig::default());
    audio
        .chunks(160)
        .enumerate()
        .find_map(|(i, f)| d.push(f).map(|e| (e, (i + 1) * 20)))
}

#[test]
fn a_beep_after_the_greeting_ends_it_when_the_beep_stops() {
    for beep_hz in [440.0, 850.0, 1000.0, 1400.0, 2000.0] {
        let mut audio = voice(6, MS(400), MS(200));
        let beep_at = audio.len() / 8;
        audio.extend(sine(beep_hz, 9000, 8000, at_8k(MS(500))));
        audio.extend(vec![0; at_8k(MS(3000))]);
        let (ended, at) = listen(&audio).expect("an end");
        assert_eq!(ended, GreetingEnded::Beep, "{beep_hz} Hz");
        // Heard the first frame after the beep, long before the silence rule.
        assert_eq!(at, beep_at + 500 + 20, "{beep_hz} Hz");
    }
}

#[test]
fn speech_is_never_a_beep_and_silence_after_it_ends_the_greeting() {
    // Pauses of 300 ms between words do not end it; 1.5 s after the last does.
    let mut audio = voice(10, MS(600), MS(300));
    let last_word_end = audio.len() / 8 - 300;
    audio.extend(vec![0; at_8k(MS(4000))]);
    assert_eq!(
        listen(&audio),
        Some((GreetingEnded::Silence, last_word_end + 1500))
    );
}

#[test]
fn a_blip_shorter_than_a_beep_is_not_one() {
    let mut audio = voice(2, MS(300), MS(100));
    audio.extend(sine(1000.0, 9000, 8000, at_8k(MS(60))));
    let blip_end = audio.len() / 8;
    audio.extend(vec![0; at_8k(MS(2000))]);
    assert_eq!(
        listen(&audio),
        Some((GreetingEnded::Silence, blip_end + 1500))
    );
}

#[test]
fn a_beep_in_noise_is_still_a_beep() {
    // A pseudo-random hiss 26 dB under the beep.
    let mut state = 0x2545_f491_u32;
    let mut noise = || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state % 900) as i16 - 450
    };
    let mut audio: Vec<i16> = voice(4, MS(500), MS(200));
    audio.extend(sine(1000.0, 9000, 8000, at_8k(MS(400))));
    audio.extend(vec![0; at_8k(MS(2000))]);
    for s in &mut audio {
        *s = s.saturating_add(noise());
    }
    assert_eq!(listen(&audio).map(|e| e.0), Some(GreetingEnded::Beep));
}

#[test]
fn a_greeting_that_never_ends_times_out() {
    let audio = voice(200, MS(500), MS(100));
    assert_eq!(listen(&audio), Some((GreetingEnded::TimedOut, 30_000)));
}

#[test]
fn a_watch_hears_gaps_on_the_wire_as_silence_and_times_out_without_audio() {
    let now = Instant::now();
    let mut watch = GreetingWatch::new(GreetingConfig::default(), now);
    let words = spoken_words(440.0, 1, MS(200), MS(0), 1600);
    let mut payload = vec![0; 160];
    let mut ended = None;
    for (n, frame) in voice(1, MS(400), MS(0)).chunks(160).enumerate() {
        G711::Pcmu.encode(frame, &mut payload);
        ended = ended.or(watch.push_g711(G711::Pcmu, &payload, 160 * n as u32));
    }
    assert_eq!(ended, None);
    // Two seconds not sent, then a quiet packet: the greeting is over.
    G711::Pcmu.encode(&words[..160], &mut payload);
    assert_eq!(
        watch.push_g711(G711::Pcmu, &payload, 3200 + 16_000),
        Some(GreetingEnded::Silence)
    );

    let mut quiet = GreetingWatch::new(GreetingConfig::default(), now);
    assert_eq!(quiet.poll_timeout(), now + Duration::from_secs(31));
    assert_eq!(quiet.handle_timeout(now + Duration::from_secs(30)), None);
    assert_eq!(
        quiet.handle_timeout(now + Duration::from_secs(31)),
        Some(GreetingEnded::TimedOut)
    );
}

/// A hiss of about 580 RMS, over the fixed threshold and about 16 dB under
/// `voice`: a noisy line, seeded.
fn hiss(audio: &mut [i16]) {
    let mut state = 0x9e37_79b9_u32;
    for s in audio {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        *s = s.saturating_add((state % 2001) as i16 - 1000);
    }
}

#[test]
fn a_greeting_in_noise_ends_when_only_the_noise_is_left() {
    // Without the noise floor the hiss was sound: no end before `max_wait`.
    let mut audio = vec![0; at_8k(MS(300))];
    audio.extend(voice(6, MS(400), MS(200)));
    let last_word_end = audio.len() / 8 - 200;
    audio.extend(vec![0; at_8k(MS(4000))]);
    hiss(&mut audio);
    let (ended, at) = listen(&audio).expect("an end");
    assert_eq!(ended, GreetingEnded::Silence);
    assert!(
        (last_word_end + 1500..=last_word_end + 1560).contains(&at),
        "ended at {at} ms, the last word at {last_word_end} ms"
    );
}

#[test]
fn a_beep_heard_from_the_first_frame_is_a_beep_not_the_line_s_noise() {
    // The watch may start during the beep: the beep is its only audio yet,
    // and must not be taken for the floor under a greeting.
    let mut audio = sine(1000.0, 9000, 8000, at_8k(MS(300)));
    audio.extend(vec![0; at_8k(MS(2000))]);
    hiss(&mut audio);
    assert_eq!(listen(&audio), Some((GreetingEnded::Beep, 320)));
}

#[test]
fn a_beep_that_stops_inside_a_frame_ends_with_the_frame_after() {
    // The beep's last 10 ms share a frame with the quiet after it: a message
    // started on that frame would overlap them, so the end waits one frame.
    let mut audio = voice(4, MS(400), MS(200));
    let beep_at = audio.len() / 8;
    audio.extend(sine(850.0, 9000, 8000, at_8k(MS(510))));
    audio.extend(vec![0; at_8k(MS(2000))]);
    hiss(&mut audio);
    let (ended, at) = listen(&audio).expect("an end");
    assert_eq!(ended, GreetingEnded::Beep);
    // The frame holding the beep's end closes at beep_at + 520 ms.
    assert_eq!(at, beep_at + 540);
}
