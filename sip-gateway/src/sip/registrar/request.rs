//! Reads what a REGISTER asks for (RFC 3261 §10.2): whose bindings, which contacts, how long.

use crate::sip::message::{header_value, header_values, param, split_list, uri_of};

/// Longest SIP username taken from a To header, in bytes.
pub(super) const MAX_USERNAME_LEN: usize = 64;

/// Longest Contact URI kept, in bytes.
pub(super) const MAX_CONTACT_LEN: usize = 256;

/// Most Contact entries one REGISTER may carry.
pub(super) const MAX_CONTACTS_PER_REQUEST: usize = 10;

/// A REGISTER as the registrar needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Register {
    /// The user part of the To URI: whose bindings these are, and whom to authenticate.
    pub username: String,
    /// Call-ID, which with CSeq orders a phone's registrations.
    pub call_id: String,
    /// CSeq number.
    pub cseq: u32,
    /// What to do with the bindings.
    pub contacts: Contacts,
}

/// What a REGISTER does to the bindings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Contacts {
    /// No Contact: list the current bindings.
    Query,
    /// `Contact: *` with `Expires: 0`: remove every binding.
    RemoveAll,
    /// Contacts to add, refresh or (with expiry 0) remove.
    Update(Vec<ContactRequest>),
}

/// One Contact of a REGISTER.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ContactRequest {
    /// The contact URI as sent, without angle brackets or header parameters.
    pub uri: String,
    /// Seconds asked for, by `expires` parameter or Expires header; `None` lets us choose.
    pub expires: Option<u32>,
}

/// Reads a REGISTER, or says in a few words why it is malformed (for a 400's Warning).
pub(super) fn read(request: &rsip::Request) -> Result<Register, &'static str> {
    let to = header_value(&request.headers, "To").ok_or("no To header")?;
    let username = username_of(uri_of(&to))?;
    let call_id = header_value(&request.headers, "Call-ID")
        .filter(|c| !c.is_empty() && c.len() <= 256)
        .ok_or("no usable Call-ID")?;
    let cseq = header_value(&request.headers, "CSeq").ok_or("no CSeq")?;
    let (number, method) = cseq.trim().split_once(' ').ok_or("malformed CSeq")?;
    if !method.trim().eq_ignore_ascii_case("REGISTER") {
        return Err("CSeq names another method");
    }
    let cseq = number.trim().parse::<u32>().map_err(|_| "malformed CSeq")?;
    let expires_header = match header_value(&request.headers, "Expires") {
        Some(v) => Some(seconds(&v).ok_or("malformed Expires")?),
        None => None,
    };
    let entries: Vec<String> = header_values(&request.headers, "Contact")
        .iter()
        .flat_map(|v| split_list(v))
        .collect();
    if entries.len() > MAX_CONTACTS_PER_REQUEST {
        return Err("too many Contact entries");
    }
    let contacts = if entries.is_empty() {
        Contacts::Query
    } else if entries.iter().any(|e| e.trim() == "*") {
        // RFC 3261 §10.3 step 6: `*` stands alone, with Expires: 0.
        if entries.len() != 1 || expires_header != Some(0) {
            return Err("Contact * needs Expires: 0 and no other Contact");
        }
        Contacts::RemoveAll
    } else {
        let mut requests = Vec::with_capacity(entries.len());
        for entry in &entries {
            let expires = match param(entry, "expires") {
                Some(v) => Some(seconds(v).ok_or("malformed expires parameter")?),
                None => expires_header,
            };
            requests.push(ContactRequest {
                uri: contact_uri(entry)?,
                expires,
            });
        }
        Contacts::Update(requests)
    };
    Ok(Register {
        username,
        call_id,
        cseq,
        contacts,
    })
}

/// Returns the user part of a sip: or sips: URI, percent-decoded.
fn username_of(uri: &str) -> Result<String, &'static str> {
    let rest = strip_scheme(uri).ok_or("To is not a sip or sips URI")?;
    let (user, _host) = rest.split_once('@').ok_or("To URI has no user")?;
    if user.contains(':') {
        return Err("To URI carries a password");
    }
    let decoded = percent_decode(user).ok_or("malformed escape in the To user")?;
    let plain = decoded
        .iter()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\\'));
    if decoded.is_empty() || decoded.len() > MAX_USERNAME_LEN || !plain {
        return Err("unusable user in To");
    }
    // Every byte was checked to be printable ASCII just above.
    Ok(decoded.iter().map(|&b| char::from(b)).collect())
}

/// Returns the URI of one Contact entry, if it is a plain sip or sips URI.
fn contact_uri(entry: &str) -> Result<String, &'static str> {
    let uri = uri_of(entry).trim();
    let plain = uri
        .bytes()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b'<' | b'>' | b'"' | b','));
    if strip_scheme(uri).is_none_or(|rest| rest.is_empty()) || uri.len() > MAX_CONTACT_LEN || !plain
    {
        return Err("Contact is not a usable sip or sips URI");
    }
    Ok(uri.to_string())
}

fn strip_scheme(uri: &str) -> Option<&str> {
    let (scheme, rest) = uri.split_once(':')?;
    (scheme.eq_ignore_ascii_case("sip") || scheme.eq_ignore_ascii_case("sips")).then_some(rest)
}

/// Reads delta-seconds; values past 2^32-1 count as that (RFC 3261 §20.19).
fn seconds(value: &str) -> Option<u32> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = value.trim_start_matches('0');
    match digits.len() > 10 {
        true => Some(u32::MAX),
        false => Some(digits.parse::<u64>().unwrap_or(0).min(u64::from(u32::MAX)) as u32),
    }
}

fn percent_decode(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_saturate_and_refuse_junk() {
        assert_eq!(seconds(" 3600 "), Some(3600));
        assert_eq!(seconds("0"), Some(0));
        assert_eq!(seconds("000"), Some(0));
        assert_eq!(seconds("4294967296"), Some(u32::MAX));
        assert_eq!(seconds("99999999999999999999999"), Some(u32::MAX));
        assert_eq!(seconds(""), None);
        assert_eq!(seconds("-1"), None);
        assert_eq!(seconds("1e3"), None);
    }

    #[test]
    fn usernames_come_from_the_to_uri() {
        assert_eq!(username_of("sip:alice@pbx.example.com").unwrap(), "alice");
        assert_eq!(username_of("SIPS:a%2Eb@h").unwrap(), "a.b");
        assert!(username_of("tel:+441234").is_err());
        assert!(username_of("sip:pbx.example.com").is_err());
        assert!(username_of("sip:alice:secret@h").is_err());
        assert!(username_of("sip:a%2@h").is_err());
        assert!(username_of("sip:a%20b@h").is_err());
        assert!(username_of("sip:%e2%82%ac@h").is_err());
        assert!(username_of(&format!("sip:{}@h", "a".repeat(65))).is_err());
    }

    #[test]
    fn contact_uris_are_plain_sip_uris() {
        assert_eq!(
            contact_uri("<sip:alice@192.168.1.20:5062;transport=tcp>;expires=60").unwrap(),
            "sip:alice@192.168.1.20:5062;transport=tcp"
        );
        assert_eq!(
            contact_uri("sip:alice@10.0.0.2;expires=60").unwrap(),
            "sip:alice@10.0.0.2"
        );
        assert!(contact_uri("<tel:+441234>").is_err());
        assert!(contact_uri("<sip:>").is_err());
        assert!(contact_uri("<http://example.com>").is_err());
        assert!(contact_uri(&format!("<sip:{}@h>", "a".repeat(300))).is_err());
    }
}
