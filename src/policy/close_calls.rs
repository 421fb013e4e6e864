//! Close calls: whether a lead of one count should win the admission contest.
//!
//! A contest is a *close call* when the candidate's count leads the victim's by exactly one.
//! What such a lead is worth depends on the workload:
//! - In a loop over more keys than fit, every key is asked for once a lap, yet the candidate
//!   always leads by one: it was asked for a moment ago, while the victim, which comes up
//!   later in the lap, was not yet. Admitting it evicts a key needed sooner than itself: the
//!   cache churns, and each churned key is a hit lost (on the LIRS loop trace, two points of
//!   an optimum of 49).
//! - Where popularity shifts, a key asked for again lately is worth more than one that was
//!   not, and admitting on the fresh request is what keeps up.
//!
//! So the policy judges its own close calls by what happens next. Each call is remembered
//! under the key it dropped (the victim if the candidate was admitted, the candidate if not).
//! When that key comes back, the call is settled: had the entry kept instead been asked for
//! since? If not, the call was a mistake, and the dropped key should have stayed. Mistaken
//! admissions move the policy towards *strict* (a lead of one no longer admits), mistaken
//! rejections towards lenient; calls that proved right move it the other way.
//!
//! Rules:
//! 1. Calls are kept in a direct-mapped table by the dropped key's short hash: a newer call
//!    overwrites an older one in its place, so memory stays bounded (16 bytes per 128 entries
//!    of capacity, rounded up to a power of two: an eighth to a quarter of a byte per entry, at
//!    least 256 bytes and at most [`MAX_CALLS`] calls a shard) and calls whose key never comes
//!    back fade.
//! 2. Only calls that drop one key in four (by its short hash) are remembered, and only those
//!    keys look in the table when they are stored again: three new entries in four skip its
//!    cache line. A quarter of the verdicts is plenty to steer one score; remembering every
//!    call measured 0.1 higher on the replay's mean and cost inserts 1.0 more L1d miss.
//! 3. Whether the kept entry was asked for is read from its node's unfolded requests, if it is
//!    still held, and from the sketch: its count rose since the call. Aging can hide a request
//!    from the sketch; that only makes a verdict rougher.
//! 4. The verdicts move a saturating score in `-SCORE_LIMIT..=SCORE_LIMIT`; the policy is strict
//!    while it is above zero. The limit is the hysteresis: from either end, it takes a run of
//!    verdicts to turn it.
//! 5. A call is recorded only if the kept entry has no unfolded requests, so that a request
//!    made before the call is not taken for one made since. A candidate admitted in a close
//!    call may still lose to a second victim in the same write (a heavy entry); its call then
//!    settles as a mistake, which only adds noise.

use super::sketch::Sketch;
use super::{Arena, SlotIndex};

/// Entries of capacity per remembered call.
const CAPACITY_PER_CALL: u64 = 128;
/// The fewest calls a bounded policy remembers.
const MIN_CALLS: u64 = 16;
/// The most calls a policy remembers: 64 KiB.
const MAX_CALLS: u64 = 4096;
/// How far the score goes either way.
const SCORE_LIMIT: i8 = 4;

/// Whether calls that drop this key are remembered (rule 2).
fn sampled(fingerprint: u32) -> bool {
    fingerprint >> 30 == 0
}

/// What a close call decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// The candidate was admitted; the victim was dropped.
    Admitted,
    /// The candidate was dropped; the victim was kept.
    Rejected,
}

/// A close call, remembered until its dropped key comes back.
#[derive(Debug, Clone, Copy)]
pub(super) struct Call {
    /// The short hash of the key that lost.
    pub(super) dropped: u32,
    /// Where the entry that won is held.
    pub(super) kept: SlotIndex,
    /// Its key's short hash, which tells it from a later entry in the same slot.
    pub(super) kept_fingerprint: u32,
    /// Its key's count at the call.
    pub(super) kept_count: u8,
    pub(super) verdict: Verdict,
}

/// The close calls a shard's policy made, and what they taught it.
#[derive(Debug, Default)]
pub(super) struct CloseCalls {
    calls: Vec<Option<Call>>,
    score: i8,
}

impl CloseCalls {
    /// Room for the calls of a shard of `capacity`; none for an unbounded one, which never
    /// holds a contest.
    pub(super) fn new(capacity: u64) -> Self {
        if capacity == u64::MAX {
            return Self::default();
        }
        let calls = (capacity / CAPACITY_PER_CALL)
            .next_power_of_two()
            .clamp(MIN_CALLS, MAX_CALLS);
        Self {
            calls: vec![None; calls as usize],
            score: 0,
        }
    }

    /// Whether a lead of one count should lose the contest.
    pub(super) fn strict(&self) -> bool {
        self.score > 0
    }

    fn place(&self, fingerprint: u32) -> usize {
        // The table's length is a power of two; the mixed high bits spread short hashes that
        // differ only in their high bits.
        (crate::hash::mix(u64::from(fingerprint)) >> 32) as usize & (self.calls.len() - 1)
    }

    /// Remembers a close call until its dropped key comes back.
    pub(super) fn record(&mut self, call: Call) {
        if self.calls.is_empty() || !sampled(call.dropped) {
            return;
        }
        let place = self.place(call.dropped);
        self.calls[place] = Some(call);
    }

    /// A key is stored again: if a close call dropped it, settles that call.
    pub(super) fn returned(&mut self, fingerprint: u32, arena: &impl Arena, sketch: &Sketch) {
        if self.calls.is_empty() || !sampled(fingerprint) {
            return;
        }
        let place = self.place(fingerprint);
        let Some(call) = self.calls[place].filter(|call| call.dropped == fingerprint) else {
            return;
        };
        self.calls[place] = None;
        let unfolded = arena.node_at(call.kept).is_some_and(|node| {
            node.fingerprint() == call.kept_fingerprint && node.has_unfolded_requests()
        });
        let kept_was_asked_for =
            unfolded || sketch.frequency(call.kept_fingerprint) > call.kept_count;
        // A mistaken admission, or a rejection that proved right, argues for strictness.
        let towards_strict = kept_was_asked_for == (call.verdict == Verdict::Rejected);
        self.score = if towards_strict {
            (self.score + 1).min(SCORE_LIMIT)
        } else {
            (self.score - 1).max(-SCORE_LIMIT)
        };
    }
}

#[cfg(all(test, not(ttlcache_loom)))]
mod tests {
    use super::*;
    use crate::policy::{Links, Node, tests::Nodes};

    /// Node 0 holds key 10, read since the policy last looked; node 1 holds key 11, not read.
    fn arena() -> Nodes {
        let read = Node::new(10);
        let unread = Node::new(11);
        unread.take_hits();
        Nodes(vec![read, unread], vec![Links::default(); 2])
    }

    fn sketch() -> Sketch {
        Sketch::with_capacity(64)
    }

    fn call(
        dropped: u32,
        kept: SlotIndex,
        kept_fingerprint: u32,
        kept_count: u8,
        verdict: Verdict,
    ) -> Call {
        Call {
            dropped,
            kept,
            kept_fingerprint,
            kept_count,
            verdict,
        }
    }

    #[test]
    fn an_admission_whose_victim_comes_back_first_makes_it_strict() {
        let (arena, sketch) = (arena(), sketch());
        let mut calls = CloseCalls::new(1_000);
        // Key 11 was admitted over key 20; 20 comes back before 11 was asked for again.
        calls.record(call(20, 1, 11, 0, Verdict::Admitted));
        calls.returned(20, &arena, &sketch);
        assert!(calls.strict());
    }

    #[test]
    fn an_admission_that_paid_keeps_it_lenient() {
        let (arena, mut sketch) = (arena(), sketch());
        let mut calls = CloseCalls::new(1_000);
        calls.record(call(20, 1, 11, 0, Verdict::Admitted));
        calls.record(call(21, 0, 10, 0, Verdict::Admitted));
        // Key 11 was asked for since (the sketch counts it); key 10 has an unfolded read.
        sketch.add(11, 1);
        calls.returned(20, &arena, &sketch);
        calls.returned(21, &arena, &sketch);
        assert!(!calls.strict());
        assert_eq!(calls.score, -2);
    }

    #[test]
    fn rejections_that_proved_right_make_it_strict_and_mistaken_ones_undo_it() {
        let (arena, sketch) = (arena(), sketch());
        let mut calls = CloseCalls::new(1_000);
        // Victim 10 was kept over candidate 30, and read before 30 came back.
        calls.record(call(30, 0, 10, 0, Verdict::Rejected));
        calls.returned(30, &arena, &sketch);
        assert!(calls.strict());
        // Victim 11 was kept over candidate 31, and 31 came back first: twice.
        for candidate in [31, 32] {
            calls.record(call(candidate, 1, 11, 0, Verdict::Rejected));
            calls.returned(candidate, &arena, &sketch);
        }
        assert!(!calls.strict());
    }

    #[test]
    fn only_the_dropped_key_settles_a_call_and_only_once() {
        let (arena, sketch) = (arena(), sketch());
        let mut calls = CloseCalls::new(1_000);
        calls.record(call(20, 1, 11, 0, Verdict::Admitted));
        calls.returned(11, &arena, &sketch);
        calls.returned(99, &arena, &sketch);
        assert_eq!(calls.score, 0);
        calls.returned(20, &arena, &sketch);
        calls.returned(20, &arena, &sketch);
        assert_eq!(calls.score, 1);
    }

    #[test]
    fn a_kept_entry_since_replaced_does_not_count_its_successors_reads() {
        let (arena, sketch) = (arena(), sketch());
        let mut calls = CloseCalls::new(1_000);
        // The call kept key 12 at node 0; node 0 now holds key 10, read since.
        calls.record(call(20, 0, 12, 0, Verdict::Admitted));
        calls.returned(20, &arena, &sketch);
        assert!(calls.strict());
    }

    #[test]
    fn the_score_saturates_so_a_short_run_turns_it() {
        let (arena, sketch) = (arena(), sketch());
        let mut calls = CloseCalls::new(1_000);
        for dropped in 100..200 {
            calls.record(call(dropped, 1, 11, 0, Verdict::Admitted));
            calls.returned(dropped, &arena, &sketch);
        }
        assert_eq!(calls.score, SCORE_LIMIT);
        for dropped in 200..200 + SCORE_LIMIT as u32 {
            calls.record(call(dropped, 1, 11, 0, Verdict::Rejected));
            calls.returned(dropped, &arena, &sketch);
        }
        assert!(!calls.strict());
    }

    #[test]
    fn calls_that_drop_unsampled_keys_are_not_remembered() {
        let (arena, sketch) = (arena(), sketch());
        let mut calls = CloseCalls::new(1_000);
        let unsampled = 0xC000_0020;
        assert!(!sampled(unsampled) && sampled(0x20));
        calls.record(call(unsampled, 1, 11, 0, Verdict::Admitted));
        calls.returned(unsampled, &arena, &sketch);
        assert_eq!(calls.score, 0);
    }

    #[test]
    fn memory_is_bounded_and_an_unbounded_policy_keeps_none() {
        assert_eq!(CloseCalls::new(u64::MAX).calls.len(), 0);
        assert_eq!(CloseCalls::new(10).calls.len(), MIN_CALLS as usize);
        assert_eq!(CloseCalls::new(1 << 40).calls.len(), MAX_CALLS as usize);
        let mut none = CloseCalls::new(u64::MAX);
        none.record(call(1, 0, 2, 0, Verdict::Admitted));
        none.returned(1, &arena(), &sketch());
        assert!(!none.strict());
    }
}
