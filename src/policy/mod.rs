//! The eviction policy: which entries a full shard gives up. W-TinyLFU, in CLOCK form.
//!
//! A new entry enters the *window*, a small ring (1% of the capacity at first; the climber
//! moves that share as the workload asks, `climber.rs`). What leaves the window
//! becomes a *candidate* for *main*, the rest of the capacity: while main has room it goes
//! straight in; when it has none, the candidate is compared with main's *victim* by how often
//! each key was asked for (the [`Sketch`]), and the less popular of the two is evicted. A
//! one-time scan therefore flows through the window without displacing what is used often, and
//! a key that keeps coming back earns its place (TinyLFU admission). A lead of a single count
//! is a *close call*: whether it admits is learned from how the policy's past close calls
//! turned out ([`close_calls`]), so that a loop over more keys than fit keeps a stable part of
//! itself while shifting popularity still gets in.
//!
//! Main is split as in an SLRU: entries arrive in *probation*; one read again there moves to
//! *protected* (80% of main) when the hand next looks at it; protected's overflow goes back to
//! probation. Victims come from probation.
//!
//! Every ring is a CLOCK: the hand looks at the oldest entry, and an entry read since the hand
//! last passed gets another turn instead of leaving. A new entry also gets one turn in the
//! window, so it is not the first to go, and the entry a write just stored never leaves the
//! window during that write, however heavy: what is inserted can be read back.
//!
//! Files: this one holds the policy over its rings; `ring.rs` a ring and its links,
//! `sketch.rs` the frequency sketch, `close_calls.rs` the memory of close calls, `climber.rs`
//! the hill climber that sizes the window, and `tests.rs` the policy's tests.
//!
//! Rules:
//! 1. A read only counts, in its node's [`Node::touch`]: a small atomic counter, written while
//!    it is below [`HIT_CAP`], so an entry read often stops writing to memory its readers share.
//!    The write that stored the entry counts as its first request. The counts reach the sketch
//!    when the policy next looks at the node ("folding"), under the write lock. Nothing else
//!    changes on a read.
//! 2. Links, queues and the sketch change only under the shard's write lock (`&mut` access).
//! 3. Each entry is in exactly one place: a ring, or (between `admit` and `settle` of one write)
//!    the staged candidates.

mod climber;
mod close_calls;
mod ring;
mod sketch;

use close_calls::{Call, CloseCalls, Verdict};
pub(crate) use ring::Links;
use ring::Ring;

pub(crate) use climber::Climber;
use sketch::Sketch;

use crate::sync::{AtomicU8, Ordering};

/// An index into the shard's slots.
pub(crate) type SlotIndex = u32;

/// Reads a node counts before it stops writing (until the policy next looks at it).
pub(crate) const HIT_CAP: u8 = 3;

/// The share of the capacity the window gets at first, in percent; the climber moves it.
const WINDOW_PERCENT: u64 = 1;
/// The share of main that protected gets, in percent.
const PROTECTED_PERCENT: u64 = 80;
/// Keys the sketch is first sized for, at most: it grows with the entries held.
const FIRST_SKETCH_KEYS: u64 = 1024;

/// Admissions between updates of the window's share from the climber (`climber.rs`).
const ADMITS_PER_ADAPTATION: u32 = 64;

/// `percent` of `total`, rounded down, without overflow.
fn share_of(total: u64, percent: u64) -> u64 {
    (u128::from(total) * u128::from(percent) / 100) as u64
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Queue {
    Window,
    Probation,
    Protected,
    /// Left the window during this write; admitted to probation or evicted before it ends.
    Staged,
}

/// The policy's part of a slot: 8 bytes, laid out first in the slot with the mark a hit sets
/// first. Its ring links are kept apart ([`Links`]).
#[derive(Debug)]
#[repr(C)]
pub(crate) struct Node {
    /// Requests since the policy last looked, up to [`HIT_CAP`]: the write that stored the
    /// entry, then reads.
    hits: AtomicU8,
    queue: Queue,
    /// Not yet passed by the window's hand: a new entry's one turn in the window.
    young: bool,
    /// The key's short hash: the sketch counts by it, and the shard finds the entry's bucket
    /// by it.
    fingerprint: u32,
}

impl Node {
    pub(crate) fn new(fingerprint: u32) -> Self {
        Self {
            fingerprint,
            queue: Queue::Window,
            young: true,
            hits: AtomicU8::new(1),
        }
    }

    /// The key's short hash, which the sketch counts by.
    pub(crate) fn fingerprint(&self) -> u32 {
        self.fingerprint
    }

    /// Records a read. Writes only while the count is below [`HIT_CAP`]; racing readers may
    /// lose a count, which only makes the estimate rougher.
    #[inline]
    pub(crate) fn touch(&self) {
        let hits = self.hits.load(Ordering::Relaxed);
        if hits < HIT_CAP {
            self.hits.store(hits + 1, Ordering::Relaxed);
        }
    }

    /// Whether the entry was asked for since the policy last looked.
    fn has_unfolded_requests(&self) -> bool {
        self.hits.load(Ordering::Relaxed) > 0
    }

    /// The reads since the policy last looked, resetting them.
    fn take_hits(&self) -> u8 {
        // Plain load and store: `&mut` access to the policy means the write lock is held.
        let hits = self.hits.load(Ordering::Relaxed);
        if hits > 0 {
            self.hits.store(0, Ordering::Relaxed);
        }
        hits
    }
}

/// Where the policy finds the node and the weight of a slot.
pub(crate) trait Arena {
    fn node(&self, index: SlotIndex) -> &Node;
    /// The node at `index`, if the slot holds an entry.
    fn node_at(&self, index: SlotIndex) -> Option<&Node>;
    fn node_mut(&mut self, index: SlotIndex) -> &mut Node;
    fn links(&self, index: SlotIndex) -> Links;
    fn links_mut(&mut self, index: SlotIndex) -> &mut Links;
    fn weight(&self, index: SlotIndex) -> u32;
}

/// A shard's eviction policy.
#[derive(Debug)]
pub(crate) struct Policy {
    window: Ring,
    probation: Ring,
    protected: Ring,
    /// Candidates for main, with their keys' counts, between `admit` and `settle`.
    staged: Vec<(SlotIndex, u8)>,
    window_budget: u64,
    main_budget: u64,
    protected_budget: u64,
    sketch: Sketch,
    /// Entries tracked, to size the sketch.
    entries: usize,
    admits_since_adaptation: u32,
    close_calls: CloseCalls,
}

impl Policy {
    /// A policy for a shard of `capacity`; `u64::MAX` means unbounded (nothing is ever evicted,
    /// and the policy keeps no sketch).
    pub(crate) fn new(capacity: u64) -> Self {
        let window_budget = if capacity == u64::MAX {
            u64::MAX
        } else {
            share_of(capacity, WINDOW_PERCENT).max(1).min(capacity)
        };
        let main_budget = capacity - window_budget;
        let sketch = if capacity == u64::MAX {
            Sketch::default()
        } else {
            Sketch::with_capacity(capacity.min(FIRST_SKETCH_KEYS) as usize)
        };
        Self {
            window: Ring::default(),
            probation: Ring::default(),
            protected: Ring::default(),
            staged: Vec::new(),
            window_budget,
            main_budget,
            protected_budget: share_of(main_budget, PROTECTED_PERCENT),
            sketch,
            entries: 0,
            admits_since_adaptation: 0,
            close_calls: CloseCalls::new(capacity),
        }
    }

    fn capacity(&self) -> u64 {
        self.window_budget.saturating_add(self.main_budget)
    }

    fn is_bounded(&self) -> bool {
        self.window_budget != u64::MAX
    }

    /// Whether it is time to give the window a new share ([`set_window`](Self::set_window)):
    /// every [`ADMITS_PER_ADAPTATION`] admissions, in a bounded shard.
    pub(crate) fn adaptation_due(&mut self) -> bool {
        if !self.is_bounded() || self.admits_since_adaptation < ADMITS_PER_ADAPTATION {
            return false;
        }
        self.admits_since_adaptation = 0;
        true
    }

    /// Gives the window `share` of the capacity (at least one unit) and main the rest. The
    /// entries follow as writes come: the window spills less or more into main.
    pub(crate) fn set_window(&mut self, share: f64) {
        let capacity = self.capacity();
        if capacity == 0 {
            return;
        }
        // In integers: `capacity as f64` may round past `capacity` above 2^53.
        let window = ((capacity as f64 * share) as u64).clamp(1, capacity);
        self.window_budget = window;
        self.main_budget = capacity - self.window_budget;
        self.protected_budget = share_of(self.main_budget, PROTECTED_PERCENT);
    }

    /// Takes in a newly stored entry, as the youngest in the window. What the window no longer
    /// has room for moves towards main; entries main has no room for are staged, and the
    /// caller evicts ([`evict`](Self::evict)) then [`settle`](Self::settle)s.
    pub(crate) fn admit(&mut self, arena: &mut impl Arena, index: SlotIndex) {
        self.entries += 1;
        if self.is_bounded() {
            self.admits_since_adaptation += 1;
        }
        self.close_calls
            .returned(arena.node(index).fingerprint(), arena, &self.sketch);
        arena.node_mut(index).queue = Queue::Window;
        self.window.push(arena, index);
        if self.is_bounded() && self.entries > self.sketch.capacity() {
            self.grow_sketch(arena);
        }
        while self.window.weight > self.window_budget {
            let Some(candidate) = self.leave_window(arena, index) else {
                break;
            };
            // The candidate's requests while in the window reach the sketch now, in the same
            // pass that reads its count for the admission contest.
            let node = arena.node(candidate);
            let frequency = self.sketch.add(node.fingerprint(), node.take_hits());
            let main = self.probation.weight + self.protected.weight;
            if main + u64::from(arena.weight(candidate)) <= self.main_budget {
                self.enter_probation(arena, candidate);
            } else {
                arena.node_mut(candidate).queue = Queue::Staged;
                self.staged.push((candidate, frequency));
            }
        }
    }

    /// The next entry to evict, still tracked: the caller removes it with
    /// [`remove`](Self::remove). `None` only when the policy tracks nothing.
    pub(crate) fn evict(&mut self, arena: &mut impl Arena) -> Option<SlotIndex> {
        if let Some(&(candidate, frequency)) = self.staged.last() {
            let Some(victim) = self.main_victim(arena) else {
                return Some(candidate);
            };
            return Some(self.contest(arena, candidate, frequency, victim));
        }
        self.main_victim(arena).or(self.window.oldest)
    }

    /// The loser of the admission contest between a candidate, whose key's count is
    /// `frequency`, and main's victim. Ties keep the victim, so a scan of new keys evicts only
    /// scanned keys; a lead of one count admits unless the close calls showed that it does not
    /// pay (`close_calls.rs`).
    fn contest(
        &mut self,
        arena: &impl Arena,
        candidate: SlotIndex,
        frequency: u8,
        victim: SlotIndex,
    ) -> SlotIndex {
        let victim_frequency = self.frequency(arena, victim);
        let close = frequency == victim_frequency + 1;
        let admitted = if close {
            !self.close_calls.strict()
        } else {
            frequency > victim_frequency
        };
        if close {
            let (dropped, kept, kept_count, verdict) = if admitted {
                (victim, candidate, frequency, Verdict::Admitted)
            } else {
                (candidate, victim, victim_frequency, Verdict::Rejected)
            };
            let kept_node = arena.node(kept);
            // A kept entry read before the call would pass for one asked for since.
            if !kept_node.has_unfolded_requests() {
                self.close_calls.record(Call {
                    dropped: arena.node(dropped).fingerprint(),
                    kept,
                    kept_fingerprint: kept_node.fingerprint(),
                    kept_count,
                    verdict,
                });
            }
        }
        if admitted { victim } else { candidate }
    }

    /// Lets the staged candidates that survived eviction into probation.
    pub(crate) fn settle(&mut self, arena: &mut impl Arena) {
        while let Some((candidate, _)) = self.staged.pop() {
            self.enter_probation(arena, candidate);
        }
    }

    /// Forgets an entry that leaves the shard for any reason. Its reads still count in the
    /// sketch, for when its key comes back.
    pub(crate) fn remove(&mut self, arena: &mut impl Arena, index: SlotIndex) {
        self.entries -= 1;
        let node = arena.node(index);
        self.fold(node);
        let queue = node.queue;
        match queue {
            Queue::Window => self.window.unlink(arena, index),
            Queue::Probation => self.probation.unlink(arena, index),
            Queue::Protected => self.protected.unlink(arena, index),
            Queue::Staged => self.staged.retain(|&(staged, _)| staged != index),
        }
    }

    /// Forgets every entry at once, and what the sketch learned.
    pub(crate) fn clear(&mut self) {
        *self = Self::new(self.capacity());
    }

    /// Grows the sketch to twice the entries held, but not past the capacity (the most entries
    /// of weight one it can hold), carrying over the counts of the keys held (those of keys
    /// not held are lost, as aging would soon lose them anyway).
    fn grow_sketch(&mut self, arena: &impl Arena) {
        let most = usize::try_from(self.capacity())
            .unwrap_or(usize::MAX)
            .max(self.entries);
        let mut grown = Sketch::with_capacity((self.entries * 2).min(most));
        for index in self.indices(arena) {
            let fingerprint = arena.node(index).fingerprint();
            grown.add(fingerprint, self.sketch.frequency(fingerprint));
        }
        self.sketch = grown;
    }

    /// Every tracked entry, the most valuable first: protected, then the window, then
    /// probation (where victims come from), each ring youngest first. A snapshot lists
    /// entries in this order, so that a restore into a smaller cache keeps the ones this
    /// policy would have kept.
    #[cfg(feature = "serde")]
    pub(crate) fn ranked(&self, arena: &impl Arena) -> Vec<SlotIndex> {
        let mut ranked = Vec::with_capacity(self.entries);
        for ring in [&self.protected, &self.window, &self.probation] {
            let Some(oldest) = ring.oldest else { continue };
            let youngest = arena.links(oldest).prev;
            let mut at = youngest;
            loop {
                ranked.push(at);
                if at == oldest {
                    break;
                }
                at = arena.links(at).prev;
            }
        }
        // Staged entries exist only inside a write, which a reader never sees.
        debug_assert!(self.staged.is_empty());
        ranked
    }

    /// Every tracked entry: the staged ones, then each ring's, oldest first.
    fn indices(&self, arena: &impl Arena) -> Vec<SlotIndex> {
        let mut indices: Vec<SlotIndex> = self.staged.iter().map(|&(index, _)| index).collect();
        for ring in [&self.window, &self.probation, &self.protected] {
            if let Some(first) = ring.oldest {
                let mut at = first;
                loop {
                    indices.push(at);
                    at = arena.links(at).next;
                    if at == first {
                        break;
                    }
                }
            }
        }
        indices
    }

    /// Moves the node's requests since the policy last looked into the sketch; returns whether
    /// there were any (the node was read since).
    fn fold(&mut self, node: &Node) -> bool {
        let hits = node.take_hits();
        if hits > 0 {
            self.sketch.add(node.fingerprint(), hits);
        }
        hits > 0
    }

    /// How often the key of the entry at `index` was asked for, as far as the sketch knows.
    fn frequency(&self, arena: &impl Arena, index: SlotIndex) -> u8 {
        self.sketch.frequency(arena.node(index).fingerprint())
    }

    /// Takes the next entry out of the window, in the order entries came in, but for one turn
    /// of grace for each new entry. `newest`, the entry being written, stays whatever its
    /// weight, so a write is always stored until the next write to the shard. Reads in the
    /// window do not keep an entry there; they count for it in the admission contest.
    fn leave_window(&mut self, arena: &mut impl Arena, newest: SlotIndex) -> Option<SlotIndex> {
        loop {
            let index = self.window.oldest?;
            if index == newest {
                if arena.links(index).next == newest {
                    return None;
                }
                self.window.rotate(arena);
                continue;
            }
            let node = arena.node_mut(index);
            if node.young {
                node.young = false;
                self.window.rotate(arena);
            } else {
                self.window.unlink(arena, index);
                return Some(index);
            }
        }
    }

    fn enter_probation(&mut self, arena: &mut impl Arena, index: SlotIndex) {
        arena.node_mut(index).queue = Queue::Probation;
        self.probation.push(arena, index);
    }

    /// Main's next victim: the oldest probation entry not read since the hand last passed.
    /// Read ones move to protected on the way. With probation empty, protected's oldest.
    fn main_victim(&mut self, arena: &mut impl Arena) -> Option<SlotIndex> {
        while let Some(index) = self.probation.oldest {
            if !self.fold(arena.node(index)) {
                return Some(index);
            }
            self.probation.unlink(arena, index);
            arena.node_mut(index).queue = Queue::Protected;
            self.protected.push(arena, index);
            self.demote_protected_overflow(arena);
        }
        self.protected.oldest
    }

    /// Moves protected's oldest unread entries back to probation until protected fits.
    fn demote_protected_overflow(&mut self, arena: &mut impl Arena) {
        while self.protected.weight > self.protected_budget {
            let Some(index) = self.protected.oldest else {
                return;
            };
            if self.fold(arena.node(index)) {
                self.protected.rotate(arena);
            } else {
                self.protected.unlink(arena, index);
                self.enter_probation(arena, index);
            }
        }
    }

    /// Every tracked entry, for consistency checks, after checking each ring's weight.
    #[cfg(all(test, not(ttlcache_loom)))]
    pub(crate) fn tracked(&self, arena: &impl Arena) -> Vec<SlotIndex> {
        let indices = self.indices(arena);
        let weight = |queue| -> u64 {
            indices
                .iter()
                .filter(|&&index| arena.node(index).queue == queue)
                .map(|&index| u64::from(arena.weight(index)))
                .sum()
        };
        assert_eq!(weight(Queue::Window), self.window.weight);
        assert_eq!(weight(Queue::Probation), self.probation.weight);
        assert_eq!(weight(Queue::Protected), self.protected.weight);
        indices
    }
}

#[cfg(all(test, not(ttlcache_loom)))]
mod tests;
