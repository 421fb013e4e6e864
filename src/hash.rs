//! How the cache spreads a key's hash over the bits it takes from it.

/// Multiplies by 2^64 / φ (Fibonacci hashing): every input bit reaches the high bits, so a
/// hasher that leaves them empty (an identity hash of small integers) still spreads keys over
/// shards (`cache`), buckets (`shard`) and sketch counters (`sketch`). A bijection: distinct
/// inputs stay distinct.
#[inline]
pub(crate) fn mix(hash: u64) -> u64 {
    hash.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}
