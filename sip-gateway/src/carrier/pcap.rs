//! Audio as a packet capture that sipp's `play_pcap_audio` sends: the
//! tests that have sipp stand in for a phone or an answering machine play
//! a tone or a greeting from it.

use crate::media::g711::G711;

/// Returns a capture (pcap, Ethernet link type) of `samples` (8 kHz) as
/// 20 ms PCMU RTP packets at their pace, between two loopback ports; sipp
/// sends their payloads from the call's media port at the same pace. A
/// last part shorter than 20 ms is padded with silence.
pub fn pcmu_capture(samples: &[i16]) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + samples.len() / 160 * 230 + 230);
    // Global header: magic, version 2.4, zone, accuracy, snap length, Ethernet.
    out.extend_from_slice(&0xa1b2_c3d4_u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    for word in [0u32, 0, 65535, 1] {
        out.extend_from_slice(&word.to_le_bytes());
    }
    for (i, chunk) in samples.chunks(160).enumerate() {
        let seq = i as u32;
        let mut frame = [0i16; 160];
        frame[..chunk.len()].copy_from_slice(chunk);
        let mut payload = [0u8; 160];
        G711::Pcmu.encode(&frame, &mut payload);
        let mut rtp = vec![0x80, if seq == 0 { 0x80 } else { 0x00 }];
        rtp.extend_from_slice(&(seq as u16).to_be_bytes());
        rtp.extend_from_slice(&(seq.wrapping_mul(160)).to_be_bytes());
        rtp.extend_from_slice(&0x5eed_0440_u32.to_be_bytes());
        rtp.extend_from_slice(&payload);
        let udp_len = 8 + rtp.len() as u16;
        let ip_len = 20 + udp_len;
        let mut packet = vec![0u8; 12];
        packet.extend_from_slice(&0x0800u16.to_be_bytes());
        packet.extend_from_slice(&[0x45, 0]);
        packet.extend_from_slice(&ip_len.to_be_bytes());
        packet.extend_from_slice(&[0, 0, 0, 0, 64, 17, 0, 0]);
        packet.extend_from_slice(&[127, 0, 0, 1, 127, 0, 0, 1]);
        packet.extend_from_slice(&6000u16.to_be_bytes());
        packet.extend_from_slice(&6002u16.to_be_bytes());
        packet.extend_from_slice(&udp_len.to_be_bytes());
        packet.extend_from_slice(&[0, 0]);
        packet.extend_from_slice(&rtp);
        let micros = u64::from(seq) * 20_000;
        out.extend_from_slice(&((micros / 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&((micros % 1_000_000) as u32).to_le_bytes());
        out.extend_from_slice(&(packet.len() as u32).to_le_bytes());
        out.extend_from_slice(&(packet.len() as u32).to_le_bytes());
        out.extend_from_slice(&packet);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_20_ms_is_one_packet_at_its_time() {
        let capture = pcmu_capture(&vec![1000; 160 * 3 + 10]);
        // A 24-byte header, then four records of 16 + 214 bytes.
        assert_eq!(capture.len(), 24 + 4 * (16 + 14 + 20 + 8 + 12 + 160));
        let record = |i: usize| &capture[24 + i * 230..24 + (i + 1) * 230];
        let micros = |r: &[u8]| u32::from_le_bytes([r[4], r[5], r[6], r[7]]);
        assert_eq!(micros(record(1)), 20_000);
        assert_eq!(micros(record(3)), 60_000);
        // The RTP header of the last: sequence 3, timestamp 480.
        let rtp = &record(3)[16 + 14 + 20 + 8..];
        assert_eq!(u16::from_be_bytes([rtp[2], rtp[3]]), 3);
        assert_eq!(u32::from_be_bytes([rtp[4], rtp[5], rtp[6], rtp[7]]), 480);
    }
}
