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
//!    are newer than the snapshot), and never by evicting (see `Shard::restore`). A key listed
//!    twice counts once, by its first copy: if that copy is not restored (expired, or no
//!    room), neither is the other.
//! 5. A serialized snapshot starts with a format tag that reading checks, so a file that is
//!    not a snapshot, or of another format version, is an error rather than a garbled cache.
//!
//! [`Clock::wall_now`]: crate::Clock::wall_now

use std::{
    fmt,
    hash::{BuildHasher, Hash},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use hashbrown::HashTable;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use crate::{
    TtlCache,
    clock::{Now, Tick},
    shard::Restored,
};

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

/// Snapshots for warm restarts.
impl<K, V, S> TtlCache<K, V, S>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
    S: BuildHasher,
{
    /// The live entries, as clones, with each entry's expiry as wall-clock time: save it
    /// (it is `Serialize`) and [`restore`](Self::restore) it into the cache of the next run.
    ///
    /// It does not stop the world: one shard at a time is copied, under its read lock, so
    /// reads and writes of the other shards go on meanwhile, and each shard is seen as of its
    /// own moment. (While a shard is copied, a write to it waits, and so do reads of it that
    /// come after that write.) Reading the entries counts nowhere, like
    /// [`peek`](Self::peek). Deadlines are kept to the millisecond, rounded down: the end of
    /// each entry's time to live, and with a time to idle, when it would idle out.
    ///
    /// # Examples
    ///
    /// ```
    /// let cache = ttlcache::TtlCache::<u32, u32>::builder().build().unwrap();
    /// cache.insert(1, 10);
    /// assert_eq!(cache.snapshot().len(), 1);
    /// ```
    pub fn snapshot(&self) -> CacheSnapshot<K, V> {
        let timeline = self.timeline();
        let wall = WallClock::at(timeline.precise_now(), timeline.wall_now());
        // A coherent cache that may not serve now (rule 3 of `redis/mod.rs`) has nothing to
        // show.
        #[cfg(feature = "redis")]
        if !self.may_serve() {
            return CacheSnapshot::new(wall, Vec::new());
        }
        let shards = self
            .shards()
            .map(|shard| {
                let now = Now::lazy(timeline);
                let shard = shard.read();
                shard
                    .ranked_entries(&now)
                    .map(|(key, value, deadline, idle_deadline)| SnapshotEntry {
                        key: key.clone(),
                        value: value.clone(),
                        expires_at: wall.to_wall(deadline),
                        idle_until: idle_deadline.and_then(|idle| wall.to_wall(idle)),
                    })
                    .collect()
            })
            .collect();
        CacheSnapshot::new(wall, interleave(shards))
    }

    /// Puts a snapshot's entries back; returns how many it stored.
    ///
    /// An entry whose time to live ended since the snapshot was taken, or that idled out, is
    /// skipped. The others keep the time to live they had left, whatever this cache's own
    /// time to live, as if written with [`insert_with_ttl`](Self::insert_with_ttl); entries
    /// without one stay without one. With a time to idle, an entry's idle time starts at the
    /// restore.
    ///
    /// A restore only adds to what the cache holds:
    /// - it skips a key that has a live entry or a pending load, which are newer than the
    ///   snapshot, so it is safe to restore while traffic is already being served;
    /// - it evicts nothing: it stores an entry only where its shard has room for it
    ///   (weighed by this cache's weigher), and skips it otherwise. The snapshot lists the
    ///   entries the policy valued most first, so a smaller cache keeps those, and they are
    ///   the last the policy would evict afterwards.
    ///
    /// Each shard's entries are stored under one hold of its write lock. Restored entries
    /// count nowhere in [`stats`](Self::stats) and are not reported to the eviction listener;
    /// expired entries removed to make room are, as `Expired`.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use ttlcache::{ManualClock, TtlCache};
    ///
    /// let clock = ManualClock::new();
    /// let cache = TtlCache::builder()
    ///     .time_to_live(Duration::from_secs(60))
    ///     .clock(clock.clone())
    ///     .build()
    ///     .unwrap();
    /// cache.insert("config", 1);
    /// clock.advance(Duration::from_secs(45));
    /// let snapshot = cache.snapshot();
    ///
    /// let restarted = TtlCache::builder()
    ///     .time_to_live(Duration::from_secs(60))
    ///     .clock(clock.clone())
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(restarted.restore(snapshot), 1);
    /// // It keeps the 15 seconds it had left, not a fresh minute.
    /// clock.advance(Duration::from_secs(15));
    /// assert_eq!(restarted.get("config"), None);
    /// ```
    ///
    /// A cache built [`coherent`](crate::CacheBuilder::coherent) (feature `redis`) restores
    /// nothing: its replicas may have invalidated any entry while this process was down.
    pub fn restore(&self, snapshot: CacheSnapshot<K, V>) -> usize {
        #[cfg(feature = "redis")]
        if self.coherent().is_ok() {
            return 0;
        }
        let timeline = self.timeline();
        let wall = WallClock::at(timeline.precise_now(), timeline.wall_now());
        let mut by_shard: Vec<Vec<Restored<K, V>>> = self.shards().map(|_| Vec::new()).collect();
        for (hash, entry) in self.first_copies(snapshot.into_entries()) {
            let idled_out = entry
                .idle_until
                .is_some_and(|idle| wall.to_tick(Some(idle)).is_none());
            let Some(deadline) = wall.to_tick(entry.expires_at).filter(|_| !idled_out) else {
                continue;
            };
            let weight = self.weigh(&entry.key, &entry.value);
            by_shard[self.shard_index(hash)].push(Restored {
                hash,
                key: entry.key,
                value: entry.value,
                weight,
                deadline,
            });
        }
        let mut restored = 0;
        for (shard, entries) in self.shards().zip(by_shard) {
            let now = Now::lazy(timeline);
            let mut removals = self.removals();
            let mut shard = shard.write();
            restored += shard.restore(entries, &now, &mut removals);
            self.adapt(&mut shard);
            drop(shard);
        }
        restored
    }

    /// The entries with their hashes, each key once, by its first copy (rule 4): a file edited
    /// or concatenated by hand may list a key twice. Done before any lock is taken, as it
    /// compares and drops keys and values.
    fn first_copies(&self, entries: Vec<SnapshotEntry<K, V>>) -> Vec<(u64, SnapshotEntry<K, V>)> {
        let mut firsts: Vec<(u64, SnapshotEntry<K, V>)> = Vec::with_capacity(entries.len());
        let mut seen = HashTable::<usize>::with_capacity(entries.len());
        for entry in entries {
            let hash = self.hash(&entry.key);
            if seen
                .find(hash, |&at| firsts[at].1.key == entry.key)
                .is_some()
            {
                continue;
            }
            seen.insert_unique(hash, firsts.len(), |&at| firsts[at].0);
            firsts.push((hash, entry));
        }
        firsts
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
