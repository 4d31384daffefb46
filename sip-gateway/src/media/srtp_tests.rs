use super::*;
use proptest::prelude::*;

fn unhex(text: &str) -> Vec<u8> {
    hex::decode(text.replace(' ', "")).unwrap()
}

/// The master key and salt of RFC 3711 Appendix B.3, also libsrtp's test key.
fn rfc_master() -> MasterKey {
    let bytes = unhex("E1F97A0D3E018BE0D64FA32C06DE4139 0EC675AD498AFEEBB6960B3AABE6");
    MasterKey::from_bytes(bytes.try_into().unwrap())
}

fn packet(seq: u16, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80, 0x00];
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(&[0xde, 0xca, 0xfb, 0xad]);
    out.extend_from_slice(&ssrc.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

#[test]
fn session_keys_follow_rfc_3711_appendix_b3() {
    let master = rfc_master();
    let mut cipher = [0u8; 16];
    derive(&master, LABEL_CIPHER, &mut cipher);
    assert_eq!(cipher.to_vec(), unhex("C61E7A93744F39EE10734AFE3FF7A087"));
    let mut salt = [0u8; 14];
    derive(&master, LABEL_SALT, &mut salt);
    assert_eq!(salt.to_vec(), unhex("30CBBC08863D8C85D49DB34A9AE1"));
    let mut auth = [0u8; 20];
    derive(&master, LABEL_AUTH, &mut auth);
    assert_eq!(
        auth.to_vec(),
        unhex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4")
    );
}

#[test]
fn aes_cm_keystream_follows_rfc_3711_appendix_b2() {
    // Session key and salt of B.2; SSRC, ROC and sequence all zero.
    let keys = SessionKeys {
        cipher: unhex("2B7E151628AED2A6ABF7158809CF4F3C")
            .try_into()
            .unwrap(),
        salt: unhex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD").try_into().unwrap(),
        auth: HmacSha1::new_from_slice(&[0; 20]).unwrap(),
    };
    let mut stream = vec![0u8; 16 * 0xff02];
    keys.crypt(0, 0, &mut stream);
    let block = |n: usize| stream[16 * n..16 * (n + 1)].to_vec();
    assert_eq!(block(0), unhex("E03EAD0935C95E80E166B16DD92B4EB4"));
    assert_eq!(block(1), unhex("D23513162B02D0F72A43A2FE4A5F97AB"));
    assert_eq!(block(2), unhex("41E95B3BB0A2E8DD477901E4FCA894C0"));
    assert_eq!(block(0xfeff), unhex("EC8CDF7398607CB0F2D21675EA9EA1E4"));
    assert_eq!(block(0xff00), unhex("362B7C3C6773516318A077D7FC5073AE"));
    assert_eq!(block(0xff01), unhex("6A2CC3787889374FBEB4C81B17BA6C44"));
}

#[test]
fn a_packet_is_protected_as_libsrtp_does() {
    // libsrtp's srtp_driver test packet: 16 bytes of 0xab from SSRC cafebabe, sequence 0x1234.
    let mut rtp = unhex("800f1234 decafbad cafebabe");
    rtp.extend_from_slice(&[0xab; 16]);
    let mut sender = Srtp::new(&rfc_master());
    let mut wire = rtp.clone();
    sender.protect(&mut wire).unwrap();
    let expected =
        unhex("800f1234 decafbad cafebabe 4e55dc4ce79978d88ca4d215949d2402 b78d6acc99ea179b8dbb");
    assert_eq!(wire, expected);
    let mut receiver = Srtp::new(&rfc_master());
    receiver.unprotect(&mut wire).unwrap();
    assert_eq!(wire, rtp);
}

#[test]
fn a_forged_or_damaged_packet_is_refused() {
    let mut sender = Srtp::new(&rfc_master());
    let mut receiver = Srtp::new(&rfc_master());
    let mut wire = packet(7, 1, &[0x55; 160]);
    sender.protect(&mut wire).unwrap();
    for at in [1, 20, wire.len() - 1] {
        let mut damaged = wire.clone();
        damaged[at] ^= 0x01;
        assert_eq!(receiver.unprotect(&mut damaged), Err(SrtpError::Forged));
    }
    let other = MasterKey::from_bytes([9; 30]);
    let mut stranger = Srtp::new(&other);
    let mut forged = packet(8, 1, &[0x55; 160]);
    stranger.protect(&mut forged).unwrap();
    assert_eq!(receiver.unprotect(&mut forged), Err(SrtpError::Forged));
    // A forgery does not move the stream on: the real packet still passes.
    receiver.unprotect(&mut wire).unwrap();
    assert_eq!(wire, packet(7, 1, &[0x55; 160]));
}

#[test]
fn a_replayed_or_too_old_packet_is_refused() {
    let mut sender = Srtp::new(&rfc_master());
    let mut receiver = Srtp::new(&rfc_master());
    let sent: Vec<Vec<u8>> = (0..100u16)
        .map(|seq| {
            let mut p = packet(1000 + seq, 42, &[seq as u8; 20]);
            sender.protect(&mut p).unwrap();
            p
        })
        .collect();
    // The newest first, then the 63 before it late and backwards: each passes once.
    let newest = sent.len() - 1;
    let oldest_kept = newest + 1 - WINDOW as usize;
    for i in (oldest_kept..=newest).rev() {
        let mut p = sent[i].clone();
        assert_eq!(receiver.unprotect(&mut p), Ok(()), "packet {i}");
    }
    for i in [newest, oldest_kept, newest - 10] {
        let mut again = sent[i].clone();
        assert_eq!(
            receiver.unprotect(&mut again),
            Err(SrtpError::Replayed),
            "{i}"
        );
    }
    let mut too_old = sent[oldest_kept - 1].clone();
    assert_eq!(receiver.unprotect(&mut too_old), Err(SrtpError::Replayed));
    let mut next = packet(1100, 42, &[1; 20]);
    sender.protect(&mut next).unwrap();
    assert_eq!(receiver.unprotect(&mut next), Ok(()));
}

#[test]
fn the_rollover_counter_follows_a_sequence_wrap_both_ways() {
    let mut sender = Srtp::new(&rfc_master());
    let mut receiver = Srtp::new(&rfc_master());
    let mut last_tag = Vec::new();
    for seq in (0xfff0..=0xffff).chain(0..0x10) {
        let plain = packet(seq, 5, b"hello, encrypted world");
        let mut wire = plain.clone();
        sender.protect(&mut wire).unwrap();
        last_tag = wire[wire.len() - TAG_LEN..].to_vec();
        receiver.unprotect(&mut wire).unwrap();
        assert_eq!(wire, plain, "sequence {seq:#x}");
    }
    assert_eq!(sender.streams[&5].highest, 0x1_000f);
    assert_eq!(receiver.streams[&5].highest, 0x1_000f);
    // The last packet's tag covers ROC 1: recomputed with ROC 0 it would not match.
    let mut plain = packet(0x000f, 5, b"hello, encrypted world");
    let mut fresh = Srtp::new(&rfc_master());
    fresh.protect(&mut plain).unwrap();
    assert_ne!(plain[plain.len() - TAG_LEN..], last_tag[..]);
}

#[test]
fn index_estimation_follows_rfc_3711_appendix_a() {
    let at = |roc: u64, s_l: u16| Stream {
        highest: roc << 16 | u64::from(s_l),
        seen: 1,
    };
    assert_eq!(at(0, 10).index_of(11), 11);
    assert_eq!(at(0, 0xfffe).index_of(2), 0x1_0002);
    assert_eq!(at(1, 2).index_of(0xfffe), 0xfffe);
    assert_eq!(at(3, 0x9000).index_of(0x8fff), 3 << 16 | 0x8fff);
    assert_eq!(at(3, 0x9000).index_of(0x0fff), 4 << 16 | 0x0fff);
}

#[test]
fn keys_never_show_in_debug() {
    let master = rfc_master();
    let shown = format!("{master:?} {:?}", Srtp::new(&master));
    assert!(!shown.to_ascii_lowercase().contains("e1f97a"), "{shown}");
    assert!(!shown.contains("225, 249"), "{shown}");
}

proptest! {
    #[test]
    fn unprotect_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        let mut receiver = Srtp::new(&rfc_master());
        let mut bytes = bytes;
        let _ = receiver.unprotect(&mut bytes);
    }

    #[test]
    fn what_is_protected_unprotects(payload in proptest::collection::vec(any::<u8>(), 0..200),
                                    seq in any::<u16>(), ssrc in any::<u32>()) {
        let mut sender = Srtp::new(&rfc_master());
        let mut receiver = Srtp::new(&rfc_master());
        let plain = packet(seq, ssrc, &payload);
        let mut wire = plain.clone();
        sender.protect(&mut wire).unwrap();
        prop_assert_eq!(wire.len(), plain.len() + TAG_LEN);
        if payload.len() >= 8 {
            prop_assert_ne!(&wire[12..wire.len() - TAG_LEN], &plain[12..]);
        }
        receiver.unprotect(&mut wire).unwrap();
        prop_assert_eq!(wire, plain);
    }
}
