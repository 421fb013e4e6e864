//! The eviction policy: which entry a full shard gives up.
//!
//! This is CLOCK (FIFO with a second chance): entries sit in a ring in insertion order; the
//! hand looks at the oldest, and an entry read since the hand last passed it has its mark
//! cleared and is passed over once more; the first unmarked entry is the victim.
//!
//! The policy owns only its links and marks, stored in a [`Node`] inside each slot of the
//! shard; it reaches them through [`Arena`], so it knows nothing of keys and values.
//!
//! Rules:
//! 1. A read marks its node with [`Node::touch`] under the shard's read lock. The mark is an
//!    atomic written only when it is not yet set, so a hot entry's line stays shared between
//!    the cores that read it.
//! 2. Links are changed only under the shard's write lock, through `&mut` access.

use crate::sync::{AtomicBool, Ordering};

/// An index into the shard's slots.
pub(crate) type SlotIndex = u32;

/// The policy's part of a slot.
#[derive(Debug)]
pub(crate) struct Node {
    prev: SlotIndex,
    next: SlotIndex,
    referenced: AtomicBool,
}

impl Node {
    pub(crate) fn new() -> Self {
        Self {
            prev: 0,
            next: 0,
            referenced: AtomicBool::new(false),
        }
    }

    /// Records a read. Writes only the first time, so repeated hits leave memory untouched.
    #[inline]
    pub(crate) fn touch(&self) {
        if !self.referenced.load(Ordering::Relaxed) {
            self.referenced.store(true, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
impl Node {
    /// The node after this one in the ring, for consistency checks.
    pub(crate) fn next_in_ring(&self) -> SlotIndex {
        self.next
    }
}

/// Where the policy finds the node of a slot.
pub(crate) trait Arena {
    fn node(&self, index: SlotIndex) -> &Node;
    fn node_mut(&mut self, index: SlotIndex) -> &mut Node;
}

/// The ring and its hand.
#[derive(Debug, Default)]
pub(crate) struct Policy {
    /// The oldest entry, where the hand points; `None` when the ring is empty.
    hand: Option<SlotIndex>,
}

impl Policy {
    /// Adds a newly stored entry, as the youngest.
    pub(crate) fn admit(&mut self, arena: &mut impl Arena, index: SlotIndex) {
        match self.hand {
            None => {
                let node = arena.node_mut(index);
                node.prev = index;
                node.next = index;
                self.hand = Some(index);
            }
            Some(oldest) => {
                // The youngest sits just behind the hand.
                let youngest = arena.node(oldest).prev;
                arena.node_mut(youngest).next = index;
                arena.node_mut(oldest).prev = index;
                let node = arena.node_mut(index);
                node.prev = youngest;
                node.next = oldest;
            }
        }
    }

    /// Forgets an entry that leaves the shard for any reason.
    pub(crate) fn remove(&mut self, arena: &mut impl Arena, index: SlotIndex) {
        let (prev, next) = (arena.node(index).prev, arena.node(index).next);
        if next == index {
            self.hand = None;
            return;
        }
        arena.node_mut(prev).next = next;
        arena.node_mut(next).prev = prev;
        if self.hand == Some(index) {
            self.hand = Some(next);
        }
    }

    /// The entry to evict next, left in the ring: the caller removes it.
    ///
    /// Takes at most two turns of the ring: the first clears every mark it passes.
    pub(crate) fn victim(&mut self, arena: &impl Arena) -> Option<SlotIndex> {
        loop {
            let index = self.hand?;
            // Plain loads and stores suffice: `&mut` access means the write lock is held.
            let node = arena.node(index);
            if !node.referenced.load(Ordering::Relaxed) {
                return Some(index);
            }
            node.referenced.store(false, Ordering::Relaxed);
            self.hand = Some(node.next);
        }
    }

    /// Where the hand points, for consistency checks.
    #[cfg(test)]
    pub(crate) fn hand(&self) -> Option<SlotIndex> {
        self.hand
    }

    /// Forgets every entry at once.
    pub(crate) fn clear(&mut self) {
        self.hand = None;
    }
}

#[cfg(all(test, not(ttlcache_loom)))]
mod tests {
    use super::*;

    struct Nodes(Vec<Node>);

    impl Arena for Nodes {
        fn node(&self, index: SlotIndex) -> &Node {
            &self.0[index as usize]
        }
        fn node_mut(&mut self, index: SlotIndex) -> &mut Node {
            &mut self.0[index as usize]
        }
    }

    fn ring(len: u32) -> (Policy, Nodes) {
        let mut nodes = Nodes((0..len).map(|_| Node::new()).collect());
        let mut policy = Policy::default();
        for index in 0..len {
            policy.admit(&mut nodes, index);
        }
        (policy, nodes)
    }

    #[test]
    fn evicts_in_insertion_order_when_nothing_is_read() {
        let (mut policy, mut nodes) = ring(3);
        for expected in 0..3 {
            assert_eq!(policy.victim(&nodes), Some(expected));
            policy.remove(&mut nodes, expected);
        }
        assert_eq!(policy.victim(&nodes), None);
    }

    #[test]
    fn a_read_entry_gets_a_second_chance() {
        let (mut policy, mut nodes) = ring(3);
        nodes.0[0].touch();
        assert_eq!(policy.victim(&nodes), Some(1));
        policy.remove(&mut nodes, 1);
        // Entry 0 lost its mark when the hand passed it, and is now behind entry 2.
        assert_eq!(policy.victim(&nodes), Some(2));
        policy.remove(&mut nodes, 2);
        assert_eq!(policy.victim(&nodes), Some(0));
    }

    #[test]
    fn when_every_entry_was_read_the_hand_still_finds_a_victim() {
        let (mut policy, nodes) = ring(4);
        nodes.0.iter().for_each(Node::touch);
        assert_eq!(policy.victim(&nodes), Some(0));
    }

    #[test]
    fn removing_the_entry_under_the_hand_moves_the_hand_on() {
        let (mut policy, mut nodes) = ring(3);
        policy.remove(&mut nodes, 0);
        assert_eq!(policy.victim(&nodes), Some(1));
        policy.admit(&mut nodes, 0);
        policy.remove(&mut nodes, 1);
        policy.remove(&mut nodes, 2);
        assert_eq!(policy.victim(&nodes), Some(0));
        policy.remove(&mut nodes, 0);
        assert_eq!(policy.victim(&nodes), None);
    }
}
