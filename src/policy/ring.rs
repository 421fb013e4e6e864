//! The policy's rings: circular lists of slots, linked through a column of [`Links`] beside
//! the slab rather than through the slots, so that a hit never reads them.

use super::{Arena, SlotIndex};

/// A node's neighbours in its ring, kept apart from the node: a hit reads the node, never
/// these.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Links {
    pub(super) prev: SlotIndex,
    pub(super) next: SlotIndex,
}

/// A circular list of nodes, oldest first, with its total weight.
#[derive(Debug, Default)]
pub(super) struct Ring {
    pub(super) oldest: Option<SlotIndex>,
    pub(super) weight: u64,
}

impl Ring {
    /// Adds `index` as the youngest.
    pub(super) fn push(&mut self, arena: &mut impl Arena, index: SlotIndex) {
        match self.oldest {
            None => {
                *arena.links_mut(index) = Links {
                    prev: index,
                    next: index,
                };
                self.oldest = Some(index);
            }
            Some(oldest) => {
                let youngest = arena.links(oldest).prev;
                arena.links_mut(youngest).next = index;
                arena.links_mut(oldest).prev = index;
                *arena.links_mut(index) = Links {
                    prev: youngest,
                    next: oldest,
                };
            }
        }
        self.weight += u64::from(arena.weight(index));
    }

    pub(super) fn unlink(&mut self, arena: &mut impl Arena, index: SlotIndex) {
        let Links { prev, next } = arena.links(index);
        self.weight -= u64::from(arena.weight(index));
        if next == index {
            self.oldest = None;
            return;
        }
        arena.links_mut(prev).next = next;
        arena.links_mut(next).prev = prev;
        if self.oldest == Some(index) {
            self.oldest = Some(next);
        }
    }

    /// Makes the oldest the youngest: the hand moves on.
    pub(super) fn rotate(&mut self, arena: &impl Arena) {
        if let Some(oldest) = self.oldest {
            self.oldest = Some(arena.links(oldest).next);
        }
    }
}
