//! How often keys were asked for, approximately: a count-min sketch of 4-bit counters.
//!
//! The eviction policy asks it whether an entry leaving the window has been asked for more
//! often than the entry main would give up for it (TinyLFU admission). It counts keys that are
//! not in the cache as well, so a key that keeps coming back earns its place.
//!
//! Rules:
//! 1. Four counters per key, in 64-bit words of sixteen 4-bit counters. A count is the least
//!    of its four counters, so collisions can only overestimate. A key's four counters lie in
//!    one 64-byte block (one in each of four of its eight words), so counting or estimating
//!    touches one cache line.
//! 2. After ten additions per expected key every counter is halved (aging), so counts follow a
//!    changing workload instead of remembering the past forever.
//! 3. Memory is bounded by the keys expected, which the policy sets from the number of entries
//!    the shard holds: [`COUNTERS_PER_KEY`] 4-bit counters each.

/// Counters per expected key: four for its own count, the rest to keep collisions rare (the
/// sketch also counts keys not in the cache). Sixteen, as in Caffeine, measured best on the
/// traces; eight cost about a point on the ARC P3 trace, and twenty-four gained nothing on the
/// mean of ten replays.
const COUNTERS_PER_KEY: usize = 16;
/// Counters per 64-bit word.
const COUNTERS_PER_WORD: usize = 16;
/// Words per block: a block is one 64-byte cache line.
const WORDS_PER_BLOCK: usize = 8;
/// The largest count a counter holds.
const MAX_COUNT: u64 = 15;

/// One cache line of counters, aligned to one: a `Vec<u64>` is aligned to 16 bytes at best, and
/// its blocks of eight words straddled two lines.
#[derive(Debug, Clone, Copy, Default)]
#[repr(align(64))]
struct Block([u64; WORDS_PER_BLOCK]);

#[derive(Debug, Default)]
pub(crate) struct Sketch {
    blocks: Vec<Block>,
    /// The keys the sketch was sized for.
    expected: usize,
    additions: u64,
}

impl Sketch {
    /// A sketch of [`COUNTERS_PER_KEY`] counters per expected key; `expected` of zero keeps
    /// it empty.
    pub(crate) fn with_capacity(expected: usize) -> Self {
        if expected == 0 {
            return Self::default();
        }
        let counters_per_block = WORDS_PER_BLOCK * COUNTERS_PER_WORD;
        let blocks = expected
            .saturating_mul(COUNTERS_PER_KEY)
            .div_ceil(counters_per_block);
        Self {
            blocks: vec![Block::default(); blocks],
            expected,
            additions: 0,
        }
    }

    /// How many keys the sketch was sized for (0 when it has no counters yet).
    pub(crate) fn capacity(&self) -> usize {
        self.expected
    }

    /// `fingerprint`'s block, and the word in it and bit shift of each of its four counters.
    #[inline]
    fn counters(&self, fingerprint: u32) -> (usize, [(usize, u32); 4]) {
        let mixed = crate::hash::mix(u64::from(fingerprint));
        // The high half picks the block (multiply-shift: any block count, no modulo); the
        // low half, for each counter, one of two words and one of sixteen counters in it.
        let block = ((mixed >> 32) * self.blocks.len() as u64) >> 32;
        let mut at = [(0, 0); 4];
        for (depth, slot) in at.iter_mut().enumerate() {
            let bits = (mixed >> (5 * depth)) as usize;
            let word = 2 * depth + (bits & 1);
            *slot = (word, ((bits >> 1) % COUNTERS_PER_WORD) as u32 * 4);
        }
        (block as usize, at)
    }

    /// How often the key was counted; 0 when the sketch has no counters.
    pub(crate) fn frequency(&self, fingerprint: u32) -> u8 {
        if self.blocks.is_empty() {
            return 0;
        }
        let (block, counters) = self.counters(fingerprint);
        let words = &self.blocks[block].0;
        counters
            .iter()
            .map(|&(word, shift)| (words[word] >> shift) & MAX_COUNT)
            .min()
            .unwrap_or(0) as u8
    }

    /// Counts `times` more requests for the key; returns its count (as
    /// [`frequency`](Self::frequency) would, before any aging this addition triggers).
    pub(crate) fn add(&mut self, fingerprint: u32, times: u8) -> u8 {
        if self.blocks.is_empty() {
            return 0;
        }
        let (block, counters) = self.counters(fingerprint);
        let words = &mut self.blocks[block].0;
        let mut least = MAX_COUNT;
        for (word, shift) in counters {
            let count = (words[word] >> shift) & MAX_COUNT;
            let raised = (count + u64::from(times)).min(MAX_COUNT);
            words[word] += (raised - count) << shift;
            least = least.min(raised);
        }
        self.additions += u64::from(times);
        if self.additions >= 10 * self.expected as u64 {
            self.age();
        }
        least as u8
    }

    /// Halves every counter.
    fn age(&mut self) {
        for word in self.blocks.iter_mut().flat_map(|block| &mut block.0) {
            *word = (*word >> 1) & 0x7777_7777_7777_7777;
        }
        self.additions /= 2;
    }
}

#[cfg(all(test, not(ttlcache_loom)))]
mod tests {
    use super::*;

    #[test]
    fn counts_saturate_at_fifteen() {
        let mut sketch = Sketch::with_capacity(64);
        assert_eq!(sketch.add(7, 3), 3);
        assert_eq!(sketch.frequency(7), 3);
        assert_eq!(sketch.add(7, 200), 15);
        assert_eq!(sketch.frequency(7), 15);
        assert_eq!(sketch.add(7, 0), 15);
    }

    #[test]
    fn frequent_keys_outscore_rare_ones() {
        let mut sketch = Sketch::with_capacity(1024);
        for round in 0..5 {
            for key in 0..500u32 {
                sketch.add(key.wrapping_mul(2_654_435_761), 1);
                if round == 0 {
                    sketch.add(1_000_000 + key, 1);
                }
            }
        }
        let hot = (0..500u32).map(|k| u32::from(sketch.frequency(k.wrapping_mul(2_654_435_761))));
        let cold = (0..500u32).map(|k| u32::from(sketch.frequency(1_000_000 + k)));
        assert!(hot.sum::<u32>() > 3 * cold.sum::<u32>());
    }

    #[test]
    fn counts_age_so_old_popularity_fades() {
        let mut sketch = Sketch::with_capacity(16);
        sketch.add(1, 15);
        // Another key's additions age the sketch twice: at 160 additions (leaving 80), and
        // 80 later. 15 halves to 7, then to 3.
        for _ in 0..(160 - 15) + 80 {
            sketch.add(0xDEAD_BEEF, 1);
        }
        assert_eq!(sketch.frequency(1), 3);
    }

    #[test]
    fn memory_is_bounded_by_the_expected_keys() {
        assert_eq!(Sketch::with_capacity(0).blocks.len(), 0);
        let sketch = Sketch::with_capacity(1000);
        assert_eq!(sketch.capacity(), 1000);
        // 16,000 counters of 4 bits, in whole 64-byte blocks: 8 bytes a key.
        assert_eq!(size_of_val(&sketch.blocks[..]), 8000);
        assert_eq!(sketch.blocks.as_ptr() as usize % 64, 0);
    }

    #[test]
    fn an_empty_sketch_counts_nothing() {
        let mut sketch = Sketch::default();
        sketch.add(1, 5);
        assert_eq!(sketch.frequency(1), 0);
    }
}
