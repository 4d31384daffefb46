//! Audio this node dropped rather than sent late, counted by where.
//!
//! The media path never waits: a packet that finds a full queue or a full
//! socket buffer is dropped, because late audio is worse than lost audio.
//! Those drops were only logged at TRACE, so a loss seen by a caller or a
//! benchmark could not be placed. Each place now counts into one
//! process-wide counter (a node is one process), read by `/metrics` and by
//! the benchmarks. Counting is one relaxed atomic add, on drops only.

use std::sync::atomic::{AtomicU64, Ordering};

/// Where a packet or frame was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaDrop {
    /// A bridged packet found the receiving leg's inbox full.
    InboxFull,
    /// The operating system refused an RTP send (its socket buffer full).
    SendRefused,
    /// A frame for a browser found its agent leg's queue full (a stalled leg).
    ToAgentBacklog,
    /// The WebRTC session refused a frame for the browser (not connected yet).
    ToAgentRefused,
    /// A frame from a browser found the gateway's side of its leg behind.
    FromAgentBehind,
}

impl MediaDrop {
    /// Every place, in a fixed order.
    pub const ALL: [MediaDrop; 5] = [
        MediaDrop::InboxFull,
        MediaDrop::SendRefused,
        MediaDrop::ToAgentBacklog,
        MediaDrop::ToAgentRefused,
        MediaDrop::FromAgentBehind,
    ];

    /// A short name for metrics labels and reports.
    pub fn label(self) -> &'static str {
        match self {
            MediaDrop::InboxFull => "inbox_full",
            MediaDrop::SendRefused => "send_refused",
            MediaDrop::ToAgentBacklog => "to_agent_backlog",
            MediaDrop::ToAgentRefused => "to_agent_refused",
            MediaDrop::FromAgentBehind => "from_agent_behind",
        }
    }

    fn counter(self) -> &'static AtomicU64 {
        &COUNTS[self as usize]
    }
}

static COUNTS: [AtomicU64; MediaDrop::ALL.len()] =
    [const { AtomicU64::new(0) }; MediaDrop::ALL.len()];

/// Counts one drop at `place`.
pub(crate) fn count(place: MediaDrop) {
    place.counter().fetch_add(1, Ordering::Relaxed);
}

/// The drops at each place since the process started.
pub fn media_drops() -> [(MediaDrop, u64); MediaDrop::ALL.len()] {
    MediaDrop::ALL.map(|place| (place, place.counter().load(Ordering::Relaxed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_place_counts_on_its_own() {
        let before = media_drops();
        count(MediaDrop::SendRefused);
        count(MediaDrop::SendRefused);
        count(MediaDrop::FromAgentBehind);
        let after = media_drops();
        for ((place, was), (same, now)) in before.into_iter().zip(after) {
            assert_eq!(place, same);
            // Other tests in this process may drop packets too: at least ours.
            let ours = match place {
                MediaDrop::SendRefused => 2,
                MediaDrop::FromAgentBehind => 1,
                _ => 0,
            };
            assert!(now >= was + ours, "{}: {was} -> {now}", place.label());
        }
        let labels: std::collections::HashSet<_> =
            MediaDrop::ALL.iter().map(|p| p.label()).collect();
        assert_eq!(labels.len(), MediaDrop::ALL.len(), "labels are distinct");
    }
}
