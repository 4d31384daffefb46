//! The websocket wire format of the stream (RFC 6455 §5), sans-IO.
//!
//! Server frames are never masked, so one encoded frame serves every client
//! of an account: the hub frames each event once and the writers send those
//! very bytes. What clients send is parsed only as far as the protocol needs:
//! a ping is answered, a close is echoed, data is read past and dropped (a
//! wallboard has nothing to say), and a frame that breaks the protocol ends
//! the connection with the status code the RFC gives for it.

use bytes::{BufMut, Bytes, BytesMut};

/// Opcode of a text frame.
pub const TEXT: u8 = 0x1;
/// Opcode of a close frame.
pub const CLOSE: u8 = 0x8;
/// Opcode of a ping frame.
pub const PING: u8 = 0x9;
/// Opcode of a pong frame.
pub const PONG: u8 = 0xA;

/// Close status: the peer broke the protocol.
pub const PROTOCOL_ERROR: u16 = 1002;
/// Close status: a message too big to take.
pub const TOO_BIG: u16 = 1009;

/// The largest message a client may send; wallboards send none, so this only
/// bounds what is read past.
pub const MAX_CLIENT_MESSAGE: u64 = 64 * 1024;

/// Encodes one unmasked, final server frame.
pub fn server_frame(opcode: u8, payload: &[u8]) -> Bytes {
    let mut out = BytesMut::with_capacity(payload.len() + 10);
    out.put_u8(0x80 | (opcode & 0x0F));
    match payload.len() {
        n if n < 126 => out.put_u8(n as u8),
        n if n <= usize::from(u16::MAX) => {
            out.put_u8(126);
            out.put_u16(n as u16);
        }
        n => {
            out.put_u8(127);
            out.put_u64(n as u64);
        }
    }
    out.put_slice(payload);
    out.freeze()
}

/// A close frame carrying `code`, or an empty one.
pub fn close_frame(code: Option<u16>) -> Bytes {
    match code {
        Some(code) => server_frame(CLOSE, &code.to_be_bytes()),
        None => server_frame(CLOSE, &[]),
    }
}

/// Returns a close frame with a status code and a reason, cut to fit a
/// control frame's 125 bytes.
pub fn close_frame_saying(code: u16, reason: &str) -> Bytes {
    let mut payload = code.to_be_bytes().to_vec();
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    payload.extend_from_slice(&reason.as_bytes()[..end]);
    server_frame(CLOSE, &payload)
}

/// What a client's bytes asked of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// A ping: answer with a pong carrying this payload.
    Ping(Vec<u8>),
    /// The client closes, with its status code if it gave one.
    Close(Option<u16>),
    /// The client broke the protocol: close with this status code.
    Refused(u16),
}

/// Reads client frames from bytes as they arrive, in any split.
#[derive(Debug, Default)]
pub struct ClientFrames {
    header: [u8; 14],
    header_len: usize,
    /// The frame being read, once its header is complete.
    frame: Option<FrameState>,
    /// Bytes of the data message read so far, across its fragments.
    message: u64,
    /// A data message is open and awaits continuation frames.
    fragmented: bool,
    done: bool,
}

#[derive(Debug)]
struct FrameState {
    opcode: u8,
    mask: [u8; 4],
    remaining: u64,
    /// Unmasked payload of a control frame (at most 125 bytes).
    control: Vec<u8>,
    /// Bytes of payload already read, for the mask's phase.
    read: usize,
}

impl ClientFrames {
    /// Feeds bytes; returns the events they complete. After a close or a
    /// refusal the rest is ignored.
    pub fn feed(&mut self, mut bytes: &[u8], events: &mut Vec<ClientEvent>) {
        while !bytes.is_empty() && !self.done {
            if self.frame.is_none() {
                let taken = self.read_header(bytes, events);
                bytes = &bytes[taken..];
                continue;
            }
            let Some(frame) = self.frame.as_mut() else {
                break;
            };
            let take = usize::try_from(frame.remaining)
                .unwrap_or(usize::MAX)
                .min(bytes.len());
            if is_control(frame.opcode) {
                for &b in &bytes[..take] {
                    frame.control.push(b ^ frame.mask[frame.read % 4]);
                    frame.read += 1;
                }
            }
            frame.remaining -= take as u64;
            bytes = &bytes[take..];
            if frame.remaining == 0 {
                self.finish_frame(events);
            }
        }
    }

    /// Takes header bytes; returns how many it used.
    fn read_header(&mut self, bytes: &[u8], events: &mut Vec<ClientEvent>) -> usize {
        let mut used = 0;
        for &b in bytes {
            self.header[self.header_len] = b;
            self.header_len += 1;
            used += 1;
            match self.header_needed() {
                Some(needed) if self.header_len == needed => {
                    self.start_frame(events);
                    return used;
                }
                _ => {}
            }
        }
        used
    }

    /// The header's full length, once the bytes that tell it are in.
    fn header_needed(&self) -> Option<usize> {
        if self.header_len < 2 {
            return None;
        }
        let extra = match self.header[1] & 0x7F {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let masked = if self.header[1] & 0x80 != 0 { 4 } else { 0 };
        Some(2 + extra + masked)
    }

    fn start_frame(&mut self, events: &mut Vec<ClientEvent>) {
        let h = self.header;
        self.header_len = 0;
        let fin = h[0] & 0x80 != 0;
        let opcode = h[0] & 0x0F;
        if h[0] & 0x70 != 0 || h[1] & 0x80 == 0 {
            // Reserved bits without an extension, or an unmasked client frame.
            return self.refuse(PROTOCOL_ERROR, events);
        }
        let (len, at) = match h[1] & 0x7F {
            126 => (u64::from(u16::from_be_bytes([h[2], h[3]])), 4),
            127 => {
                let mut n = [0; 8];
                n.copy_from_slice(&h[2..10]);
                (u64::from_be_bytes(n), 10)
            }
            n => (u64::from(n), 2),
        };
        let mut mask = [0; 4];
        mask.copy_from_slice(&h[at..at + 4]);
        match opcode {
            CLOSE | PING | PONG if !fin || len > 125 => return self.refuse(PROTOCOL_ERROR, events),
            CLOSE | PING | PONG => {}
            0x0 if !self.fragmented => return self.refuse(PROTOCOL_ERROR, events),
            0x1 | 0x2 if self.fragmented => return self.refuse(PROTOCOL_ERROR, events),
            0x0..=0x2 => {
                self.message = self.message.saturating_add(len);
                if self.message > MAX_CLIENT_MESSAGE {
                    return self.refuse(TOO_BIG, events);
                }
                self.fragmented = !fin;
                if fin {
                    self.message = 0;
                }
            }
            _ => return self.refuse(PROTOCOL_ERROR, events),
        }
        self.frame = Some(FrameState {
            opcode,
            mask,
            remaining: len,
            control: Vec::new(),
            read: 0,
        });
        if len == 0 {
            self.finish_frame(events);
        }
    }

    fn finish_frame(&mut self, events: &mut Vec<ClientEvent>) {
        let Some(frame) = self.frame.take() else {
            return;
        };
        match frame.opcode {
            PING => events.push(ClientEvent::Ping(frame.control)),
            CLOSE => {
                self.done = true;
                let code = match frame.control.as_slice() {
                    [] => None,
                    [hi, lo, ..] => Some(u16::from_be_bytes([*hi, *lo])),
                    [_] => {
                        events.push(ClientEvent::Refused(PROTOCOL_ERROR));
                        return;
                    }
                };
                events.push(ClientEvent::Close(code));
            }
            _ => {}
        }
    }

    fn refuse(&mut self, code: u16, events: &mut Vec<ClientEvent>) {
        self.done = true;
        events.push(ClientEvent::Refused(code));
    }
}

fn is_control(opcode: u8) -> bool {
    opcode & 0x8 != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client frame as a browser sends it: masked.
    fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
        let mask = [0x37, 0xfa, 0x21, 0x3d];
        let mut out = vec![first];
        match payload.len() {
            n if n < 126 => out.push(0x80 | n as u8),
            n if n <= 0xFFFF => {
                out.push(0x80 | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(0x80 | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        out
    }

    fn events_of(bytes: &[u8]) -> Vec<ClientEvent> {
        let mut frames = ClientFrames::default();
        let mut events = Vec::new();
        frames.feed(bytes, &mut events);
        events
    }

    #[test]
    fn server_frames_carry_their_length_in_the_shortest_form() {
        assert_eq!(&server_frame(TEXT, b"Hello")[..], b"\x81\x05Hello");
        let medium = server_frame(TEXT, &[b'a'; 300]);
        assert_eq!(&medium[..4], &[0x81, 126, 0x01, 0x2C]);
        assert_eq!(medium.len(), 304);
        let long = server_frame(TEXT, &vec![b'a'; 70_000]);
        assert_eq!(&long[..2], &[0x81, 127]);
        assert_eq!(&long[2..10], &70_000u64.to_be_bytes());
        assert_eq!(&close_frame(Some(1000))[..], &[0x88, 2, 0x03, 0xE8]);
        assert_eq!(&close_frame_saying(4001, "bye")[..], b"\x88\x05\x0f\xa1bye");
        // A control frame holds 125 bytes: the code and 123 of the reason,
        // cut where a character starts.
        let long = close_frame_saying(4001, &"é".repeat(100));
        assert_eq!(long[1], 124);
        assert_eq!(std::str::from_utf8(&long[4..]), Ok("é".repeat(61).as_str()));
    }

    #[test]
    fn pings_are_read_in_any_split_and_data_is_read_past() {
        let mut bytes = client_frame(0x81, b"ignored text");
        bytes.extend(client_frame(0x89, b"are you there"));
        bytes.extend(client_frame(0x82, &[7; 1000]));
        bytes.extend(client_frame(0x89, b""));
        let whole = events_of(&bytes);
        let expected = vec![
            ClientEvent::Ping(b"are you there".to_vec()),
            ClientEvent::Ping(Vec::new()),
        ];
        assert_eq!(whole, expected);
        // One byte at a time gives the same.
        let mut frames = ClientFrames::default();
        let mut events = Vec::new();
        for b in &bytes {
            frames.feed(std::slice::from_ref(b), &mut events);
        }
        assert_eq!(events, expected);
    }

    #[test]
    fn a_close_is_echoed_with_its_code_and_ends_the_reading() {
        let mut bytes = client_frame(0x88, &1001u16.to_be_bytes());
        bytes.extend(client_frame(0x89, b"after the close"));
        assert_eq!(events_of(&bytes), vec![ClientEvent::Close(Some(1001))]);
        assert_eq!(
            events_of(&client_frame(0x88, b"")),
            vec![ClientEvent::Close(None)]
        );
    }

    #[test]
    fn fragments_of_one_message_are_accepted() {
        let mut bytes = client_frame(0x01, b"first ");
        bytes.extend(client_frame(0x89, b"between"));
        bytes.extend(client_frame(0x80, b"last"));
        bytes.extend(client_frame(0x81, b"next"));
        assert_eq!(
            events_of(&bytes),
            vec![ClientEvent::Ping(b"between".to_vec())]
        );
    }

    #[test]
    fn protocol_breaches_are_refused_with_their_status() {
        let refused = |bytes: &[u8], code: u16| {
            assert_eq!(
                events_of(bytes),
                vec![ClientEvent::Refused(code)],
                "{bytes:02x?}"
            );
        };
        // Unmasked.
        refused(b"\x81\x02hi", PROTOCOL_ERROR);
        // A reserved bit.
        refused(&client_frame(0xC1, b"hi"), PROTOCOL_ERROR);
        // An unknown opcode.
        refused(&client_frame(0x83, b"hi"), PROTOCOL_ERROR);
        // A fragmented ping, and one too long.
        refused(&client_frame(0x09, b"hi"), PROTOCOL_ERROR);
        refused(&client_frame(0x89, &[0; 126]), PROTOCOL_ERROR);
        // A continuation with nothing to continue, and a new message inside one.
        refused(&client_frame(0x80, b"hi"), PROTOCOL_ERROR);
        let mut nested = client_frame(0x01, b"a");
        nested.extend(client_frame(0x81, b"b"));
        refused(&nested, PROTOCOL_ERROR);
        // A close whose code is one byte.
        refused(&client_frame(0x88, &[3]), PROTOCOL_ERROR);
        // A message over the limit, whole or in fragments.
        let limit = MAX_CLIENT_MESSAGE as usize;
        refused(&client_frame(0x82, &vec![0; limit + 1]), TOO_BIG);
        let mut pieces = client_frame(0x02, &vec![0; limit]);
        pieces.extend(client_frame(0x80, b"x"));
        refused(&pieces, TOO_BIG);
    }

    /// Feeds `bytes` cut at `cut`, then whole; both must give the same events.
    fn same_in_two_pieces(bytes: &[u8], cut: usize) -> (Vec<ClientEvent>, Vec<ClientEvent>) {
        let cut = cut.min(bytes.len());
        let mut frames = ClientFrames::default();
        let mut split = Vec::new();
        frames.feed(&bytes[..cut], &mut split);
        frames.feed(&bytes[cut..], &mut split);
        (events_of(bytes), split)
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_are_read_without_panic_however_they_arrive(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400),
            cut in 0usize..400,
        ) {
            let (whole, split) = same_in_two_pieces(&bytes, cut);
            proptest::prop_assert_eq!(whole, split);
        }

        #[test]
        fn any_run_of_masked_frames_is_read_the_same_however_it_arrives(
            frames in proptest::collection::vec(
                (proptest::prelude::any::<u8>(), proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)),
                0..6,
            ),
            cut in 0usize..2000,
        ) {
            let bytes: Vec<u8> = frames
                .iter()
                .flat_map(|(first, payload)| client_frame(*first, payload))
                .collect();
            let (whole, split) = same_in_two_pieces(&bytes, cut);
            proptest::prop_assert!(whole.len() <= frames.len());
            proptest::prop_assert_eq!(whole, split);
        }
    }
}
