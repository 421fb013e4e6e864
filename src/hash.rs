//! Hashing: the hasher a cache uses unless told otherwise ([`DefaultHashBuilder`]), and how the
//! cache spreads a key's hash over the bits it takes from it ([`mix`]).

use std::{
    fmt,
    hash::{BuildHasher, Hasher},
};

/// The hasher a cache uses unless given another with
/// [`CacheBuilder::hasher`](crate::CacheBuilder::hasher): fast, and randomly seeded per
/// cache. It is foldhash's fast variant (hashbrown's default; quick_cache uses foldhash's
/// quality variant) behind a type of this crate, so that the algorithm can change without
/// changing the API.
///
/// It hashes a `u64` key in a few nanoseconds, where std's SipHash
/// [`RandomState`](std::hash::RandomState) takes about ten: a tenth or more of a hit.
///
/// **Hash flooding.** The hasher is seeded at random (a seed per process, and one per
/// cache), so a list of colliding keys cannot be prepared in advance: it is "minimally
/// DoS-resistant", in foldhash's words, and defeats simple attacks. It is not built to resist
/// an attacker who chooses keys at will and can watch how long requests take: such an
/// attacker may learn enough to make keys collide, piling them into one bucket and slowing
/// that shard. For keys an attacker controls (user names, URLs, header values) choose std's
/// SipHash, which is built to resist that:
///
/// ```
/// use std::hash::RandomState;
/// use ttlcache::TtlCache;
///
/// let by_url = TtlCache::<String, u64>::builder()
///     .hasher(RandomState::new())
///     .build()
///     .unwrap();
/// by_url.insert("/home".to_string(), 1);
/// # assert_eq!(by_url.get("/home"), Some(1));
/// ```
///
/// # Examples
///
/// ```
/// use std::hash::BuildHasher;
/// use ttlcache::DefaultHashBuilder;
///
/// let one = DefaultHashBuilder::default();
/// assert_eq!(one.hash_one(42u64), one.hash_one(42u64));
/// let another = DefaultHashBuilder::default();
/// assert_ne!(one.hash_one(42u64), another.hash_one(42u64), "seeded apart");
/// ```
#[derive(Clone, Default)]
pub struct DefaultHashBuilder(foldhash::fast::RandomState);

impl BuildHasher for DefaultHashBuilder {
    type Hasher = FastHasher;

    #[inline]
    fn build_hasher(&self) -> FastHasher {
        FastHasher(self.0.build_hasher())
    }
}

/// Shows no seed.
impl fmt::Debug for DefaultHashBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DefaultHashBuilder").finish_non_exhaustive()
    }
}

/// The hasher a [`DefaultHashBuilder`] builds.
///
/// # Examples
///
/// ```
/// use std::hash::{BuildHasher, Hasher};
/// use ttlcache::DefaultHashBuilder;
///
/// let builder = DefaultHashBuilder::default();
/// let mut hasher = builder.build_hasher();
/// hasher.write_u64(7);
/// assert_eq!(hasher.finish(), builder.hash_one(7u64));
/// ```
#[derive(Clone)]
pub struct FastHasher(foldhash::fast::FoldHasher<'static>);

impl Hasher for FastHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0.finish()
    }

    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        self.0.write(bytes);
    }

    #[inline]
    fn write_u8(&mut self, i: u8) {
        self.0.write_u8(i);
    }

    #[inline]
    fn write_u16(&mut self, i: u16) {
        self.0.write_u16(i);
    }

    #[inline]
    fn write_u32(&mut self, i: u32) {
        self.0.write_u32(i);
    }

    #[inline]
    fn write_u64(&mut self, i: u64) {
        self.0.write_u64(i);
    }

    #[inline]
    fn write_u128(&mut self, i: u128) {
        self.0.write_u128(i);
    }

    #[inline]
    fn write_usize(&mut self, i: usize) {
        self.0.write_usize(i);
    }
}

/// Shows no state.
impl fmt::Debug for FastHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FastHasher").finish_non_exhaustive()
    }
}

/// Multiplies by 2^64 / φ (Fibonacci hashing): every input bit reaches the high bits, so a
/// hasher that leaves them empty (an identity hash of small integers) still spreads keys over
/// shards (`cache`), buckets (`shard`) and sketch counters (`sketch`). A bijection: distinct
/// inputs stay distinct.
#[inline]
pub(crate) fn mix(hash: u64) -> u64 {
    hash.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}
