//! One call's reference, why it ended, and who answered it.

/// An opaque random reference to one call; it carries nothing about the lead.
///
/// On the wire and in the database it is written as 32 lower-case hex
/// digits; it is parsed back only where it enters from outside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CallRef(u128);

impl CallRef {
    /// Returns a fresh random reference.
    pub fn random() -> Self {
        CallRef(rand::random())
    }

    /// Returns the reference as a number.
    pub const fn as_u128(self) -> u128 {
        self.0
    }

    /// Rebuilds a reference from its number.
    pub const fn from_u128(value: u128) -> Self {
        CallRef(value)
    }
}

impl std::fmt::Display for CallRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

impl std::str::FromStr for CallRef {
    type Err = ParseCallRefError;

    /// Reads exactly the spelling [`CallRef`]'s `Display` writes: 32
    /// lower-case hex digits, so one call has one spelling everywhere.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let canonical = s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !canonical {
            return Err(ParseCallRefError);
        }
        u128::from_str_radix(s, 16)
            .map(CallRef)
            .map_err(|_| ParseCallRefError)
    }
}

/// Text that is not a call reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseCallRefError;

impl std::fmt::Display for ParseCallRefError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a call reference is 32 lower-case hex digits")
    }
}

impl std::error::Error for ParseCallRefError {}

impl serde::Serialize for CallRef {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for CallRef {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Hex;

        impl serde::de::Visitor<'_> for Hex {
            type Value = CallRef;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a call reference (32 lower-case hex digits)")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<CallRef, E> {
                v.parse()
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Str(v), &self))
            }
        }

        deserializer.deserialize_str(Hex)
    }
}

/// Its JSON Schema, for the API's description: the spelling `Display`
/// writes and `FromStr` reads.
#[cfg(feature = "schema")]
impl schemars::JsonSchema for CallRef {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "CallRef".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "An opaque reference to one call: 32 lower-case hex digits.",
            "type": "string",
            "pattern": "^[0-9a-f]{32}$",
        })
    }
}

/// Why a call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndCause {
    /// The called party is busy (486, 600).
    Busy,
    /// Nobody answered: ring timeout, 408 or 480 (the callee is not reachable right now).
    NoAnswer,
    /// The call was refused (403, 603, other 4xx/6xx, and 3xx since redirects are not followed).
    Rejected,
    /// The number does not exist or is incomplete (404, 410, 484, 485, 604).
    InvalidNumber,
    /// The trunk or the network behind it is overloaded (502, 503, 504).
    Congestion,
    /// The trunk failed: no response (Timer B), a transport error, or another 5xx.
    TrunkFailure,
    /// Our credentials were refused, or a challenge could not be answered.
    AuthenticationFailed,
    /// No common codec or unusable SDP (488, 606, or a bad answer).
    MediaFailed,
    /// The far end sent BYE.
    RemoteHangup,
    /// We hung up.
    LocalHangup,
    /// RTP stopped arriving for longer than the media timeout, so we hung up.
    MediaTimeout,
}

/// Who answered a call screened for answering machines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmdVerdict {
    /// A person: a short greeting, then silence.
    Human,
    /// A machine: a long greeting or many words.
    Machine,
    /// Silence, or no verdict within the time allowed.
    Unsure,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_reads_back_from_its_hex() {
        let r = CallRef::from_u128(0xabc);
        assert_eq!(r.to_string(), "00000000000000000000000000000abc");
        assert_eq!(r.to_string().parse::<CallRef>(), Ok(r));
        assert!("not hex".parse::<CallRef>().is_err());
    }

    #[test]
    fn only_its_own_spelling_reads_back() {
        for other in [
            "abc",
            "00000000000000000000000000000ABC",
            "+0000000000000000000000000000abc",
        ] {
            assert_eq!(other.parse::<CallRef>(), Err(ParseCallRefError), "{other}");
        }
    }

    #[test]
    fn it_is_its_hex_string_in_json() {
        let r = CallRef::from_u128(0xabc);
        let json = serde_json::to_string(&r).ok();
        assert_eq!(
            json.as_deref(),
            Some("\"00000000000000000000000000000abc\"")
        );
        assert_eq!(
            serde_json::from_str::<CallRef>("\"00000000000000000000000000000abc\"").ok(),
            Some(r)
        );
        let err = serde_json::from_str::<CallRef>("\"abc\"")
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("32 lower-case hex digits")));
        assert!(serde_json::from_str::<CallRef>("2748").is_err());
    }
}
