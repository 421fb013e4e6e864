//! [`CacheSnapshot`]: a cache's live entries, written out to survive a restart (feature `serde`).
//!
//! Rules:
//! 1. Expiry crosses the restart as wall-clock time. A snapshot pairs one reading of the cache's
//!    clock with one of its wall clock ([`Clock::wall_now`]), and turns each deadline into
//!    milliseconds since the Unix epoch, rounded down; a restore turns it back into a deadline
//!    on its own clock the same way. An entry restored never outlives its deadline, an entry
//!    past it is not restored, and an entry without one stays without one.
//! 2. With a time to idle, the idle deadline is kept too: an entry that idled out while the
//!    process was down is not restored. One that did not starts a new idle period at the
//!    restore, as if it had just been written.
//! 3. Entries are listed most valuable first, by the policy's ranking (`Policy::ranked`), the
//!    shards interleaved, so that a restore that runs out of room drops the least valuable.
//! 4. A restore only adds: never over a live entry or a pending load of the same key (both
//!    are newer than the snapshot), and never by evicting (see `Shard::restore`).
//! 5. A serialized snapshot starts with a format tag that reading checks, so a file that is
//!    not a snapshot, or of another format version, is an error rather than a garbled cache.
//!
//! [`Clock::wall_now`]: crate::Clock::wall_now

use std::{
    fmt,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use crate::clock::Tick;

/// The live entries of a [`TtlCache`](crate::TtlCache), with their expiry as wall-clock time:
/// what [`TtlCache::snapshot`](crate::TtlCache::snapshot) takes and
/// [`TtlCache::restore`](crate::TtlCache::restore) puts back.
///
/// It serializes with any serde format; a format tag comes first, and reading a file that is
/// not a ttlcache snapshot (or is cut short) is the format's error. Entries are listed most
/// valuable to the eviction policy first.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use ttlcache::{CacheSnapshot, TtlCache};
///
/// let cache = TtlCache::new(1_000, Duration::from_secs(60));
/// cache.insert(1_u64, "one".to_string());
///
/// let json = serde_json::to_string(&cache.snapshot()).unwrap();
///
/// // After a restart:
/// let snapshot: CacheSnapshot<u64, String> = serde_json::from_str(&json).unwrap();
/// let restarted = TtlCache::new(1_000, Duration::from_secs(60));
/// assert_eq!(restarted.restore(snapshot), 1);
/// assert_eq!(restarted.get(&1).as_deref(), Some("one"));
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CacheSnapshot<K, V> {
    format: Format,
    /// When the snapshot was taken, in milliseconds since the Unix epoch.
    taken_at: u64,
    entries: Vec<SnapshotEntry<K, V>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct SnapshotEntry<K, V> {
    pub(crate) key: K,
    pub(crate) value: V,
    /// When the entry's time to live ends, in milliseconds since the Unix epoch; `None` for
    /// never.
    pub(crate) expires_at: Option<u64>,
    /// With a time to idle, when the entry idles out unless it is read, in milliseconds since
    /// the Unix epoch.
    #[serde(default)]
    pub(crate) idle_until: Option<u64>,
}

impl<K, V> CacheSnapshot<K, V> {
    pub(crate) fn new(clock: WallClock, entries: Vec<SnapshotEntry<K, V>>) -> Self {
        Self {
            format: Format,
            taken_at: millis_since_epoch(clock.wall),
            entries,
        }
    }

    pub(crate) fn into_entries(self) -> Vec<SnapshotEntry<K, V>> {
        self.entries
    }

    /// How many entries the snapshot holds.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = ttlcache::TtlCache::<u32, u32>::builder().build().unwrap();
    /// cache.insert(1, 10);
    /// assert_eq!(cache.snapshot().len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the snapshot holds no entries.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = ttlcache::TtlCache::<u32, u32>::builder().build().unwrap();
    /// assert!(cache.snapshot().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// When the snapshot was taken, to the millisecond, by the cache's clock
    /// ([`Clock::wall_now`](crate::Clock::wall_now)).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    ///
    /// let cache = ttlcache::TtlCache::<u32, u32>::builder().build().unwrap();
    /// let age = SystemTime::now().duration_since(cache.snapshot().taken_at()).unwrap();
    /// assert!(age < Duration::from_secs(60));
    /// ```
    pub fn taken_at(&self) -> SystemTime {
        from_millis_since_epoch(self.taken_at)
    }
}

/// One moment on both a cache's clock and its wall clock, to carry deadlines across.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WallClock {
    tick: Tick,
    wall: SystemTime,
}

impl WallClock {
    /// Pairs `tick` and `wall`, two readings of one moment.
    pub(crate) fn at(tick: Tick, wall: SystemTime) -> Self {
        Self { tick, wall }
    }

    /// A deadline on the cache's clock as milliseconds since the Unix epoch, rounded down;
    /// `None` for never (and for a deadline past what `SystemTime` can hold).
    pub(crate) fn to_wall(self, deadline: Tick) -> Option<u64> {
        if deadline.is_never() {
            return None;
        }
        let at = self.wall.checked_add(deadline.since(self.tick))?;
        Some(millis_since_epoch(at))
    }

    /// The time left until a deadline in milliseconds since the Unix epoch; `None` once it
    /// has come. One too far out for `SystemTime` is `Duration::MAX`: never.
    fn time_left(self, deadline: u64) -> Option<Duration> {
        let Some(at) = UNIX_EPOCH.checked_add(Duration::from_millis(deadline)) else {
            return Some(Duration::MAX);
        };
        at.duration_since(self.wall)
            .ok()
            .filter(|left| !left.is_zero())
    }

    /// A deadline in milliseconds since the Unix epoch, or never, as a tick of the cache's
    /// clock; `None` once it has come.
    pub(crate) fn to_tick(self, deadline: Option<u64>) -> Option<Tick> {
        match deadline {
            None => Some(Tick::NEVER),
            Some(deadline) => Some(self.tick.after(self.time_left(deadline)?)),
        }
    }
}

/// Milliseconds since the Unix epoch, 0 for a time before it, saturating far in the future.
fn millis_since_epoch(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |since| {
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    })
}

fn from_millis_since_epoch(millis: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_millis(millis))
        .unwrap_or(UNIX_EPOCH)
}

/// Puts the entries of each shard's list (most valuable first) into one list, taking the
/// first of every shard, then the second of every shard, and so on: a restore that runs
/// out of room then drops the least valuable of every shard, not all of the last shards.
pub(crate) fn interleave<T>(shards: Vec<Vec<T>>) -> Vec<T> {
    let total = shards.iter().map(Vec::len).sum();
    let mut lists: Vec<_> = shards.into_iter().map(Vec::into_iter).collect();
    let mut all = Vec::with_capacity(total);
    while all.len() < total {
        all.extend(lists.iter_mut().filter_map(Iterator::next));
    }
    all
}

/// The tag a serialized snapshot starts with.
const FORMAT: &str = "ttlcache-snapshot-1";

/// The format tag, checked on reading.
#[derive(Clone, Copy, Debug)]
struct Format;

impl Serialize for Format {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(FORMAT)
    }
}

impl<'de> Deserialize<'de> for Format {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Tag;
        impl de::Visitor<'_> for Tag {
            type Value = Format;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "the format tag {FORMAT:?}")
            }

            fn visit_str<E: de::Error>(self, tag: &str) -> Result<Format, E> {
                if tag == FORMAT {
                    Ok(Format)
                } else {
                    Err(E::custom(format_args!(
                        "not a ttlcache snapshot of this version: format tag {tag:?}, \
                         expected {FORMAT:?}"
                    )))
                }
            }
        }
        deserializer.deserialize_str(Tag)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_cross_the_wall_clock_rounded_down() {
        let clock = WallClock::at(Tick::from_raw(1_000_000_000), SystemTime::now());
        let deadline = Tick::from_raw(1_000_000_000 + 5_400_000);
        let wall = clock.to_wall(deadline).unwrap();
        assert_eq!(
            wall,
            millis_since_epoch(clock.wall + Duration::from_nanos(5_400_000))
        );
        let left = clock.time_left(wall).unwrap();
        assert!(left <= Duration::from_nanos(5_400_000), "{left:?}");
        assert!(left > Duration::from_millis(4), "{left:?}");
        assert_eq!(
            clock.to_tick(Some(wall)),
            Some(Tick::from_raw(1_000_000_000).after(left))
        );
    }

    #[test]
    fn never_stays_never_and_the_past_is_gone() {
        let clock = WallClock::at(Tick::from_raw(7), SystemTime::now());
        assert_eq!(clock.to_wall(Tick::NEVER), None);
        assert_eq!(clock.to_tick(None), Some(Tick::NEVER));
        assert_eq!(clock.to_tick(Some(0)), None);
        assert_eq!(clock.time_left(0), None);
        assert_eq!(clock.time_left(millis_since_epoch(clock.wall)), None);
        let far = clock.time_left(u64::MAX).unwrap();
        assert!(far > Duration::from_secs(100 * 365 * 24 * 3600), "{far:?}");
    }

    #[test]
    fn interleaving_takes_each_shards_best_first() {
        let shards = vec![vec![1, 2, 3], vec![], vec![10, 20], vec![100]];
        assert_eq!(interleave(shards), [1, 10, 100, 2, 20, 3]);
    }
}
