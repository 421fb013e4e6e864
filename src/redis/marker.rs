//! Markers: the Redis keys whose writes invalidate entries, and what an invalidated key name
//! says. Markers live under `<namespace>:inv:` (the prefix), a segment of the namespace that
//! is the crate's alone, so that an application key such as `myapp:users:42` is never
//! written, deleted or tracked by the crate:
//!
//! | marker | invalidates |
//! |---|---|
//! | `<namespace>:inv:<c>:<k as ToRedisArgs writes it>` | key `k` of cache `c` |
//! | `<namespace>:inv:<c>` | every entry of cache `c` (`invalidate_all_everywhere`, and an `AsyncLazy`'s value) |
//! | `<namespace>:inv::<nonce>` | nothing: a handle's probe, whose push shows that pushes arrive |
//!
//! A cache's name is non-empty and holds no `:`, so the first `:` after the prefix ends it,
//! and a probe (an empty name) is told apart from every cache's marker.

use redis::{FromRedisValue, ToRedisArgs, Value};

/// What an invalidated key name, once stripped of the namespace's prefix, designates.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Target<'a> {
    /// One key of the cache named first: the key's bytes as a writer encoded them.
    Key(&'a str, &'a [u8]),
    /// Every entry of the cache named.
    All(&'a str),
    /// A handle's probe, with its nonce.
    Probe(&'a [u8]),
}

/// What follows the namespace in every marker: the crate's own segment of it.
pub(crate) const SEGMENT: &str = ":inv:";

/// The prefix every marker of `namespace` starts with, and that its handles track.
pub(crate) fn prefix(namespace: &str) -> String {
    format!("{namespace}{SEGMENT}")
}

/// The probe marker of nonce `nonce`.
pub(crate) fn of_probe(prefix: &str, nonce: &str) -> Vec<u8> {
    format!("{prefix}:{nonce}").into_bytes()
}

/// The marker of `key` in cache `name`; `None` if the key is written as more or fewer than
/// one Redis argument (a tuple, say), which has no single marker.
pub(crate) fn of_key<K: ToRedisArgs>(prefix: &str, name: &str, key: &K) -> Option<Vec<u8>> {
    let mut args = key.to_redis_args();
    if args.len() != 1 {
        return None;
    }
    let key = args.pop()?;
    let mut marker = Vec::with_capacity(prefix.len() + name.len() + 1 + key.len());
    marker.extend_from_slice(prefix.as_bytes());
    marker.extend_from_slice(name.as_bytes());
    marker.push(b':');
    marker.extend_from_slice(&key);
    Some(marker)
}

/// The marker of every entry of cache `name`.
pub(crate) fn of_all(prefix: &str, name: &str) -> Vec<u8> {
    [prefix.as_bytes(), name.as_bytes()].concat()
}

/// What an invalidated key name designates; `None` if it is not under `prefix` (which
/// tracking by prefix never sends) or names no cache.
pub(crate) fn parse<'a>(prefix: &str, invalidated: &'a [u8]) -> Option<Target<'a>> {
    let rest = invalidated.strip_prefix(prefix.as_bytes())?;
    if let Some(nonce) = rest.strip_prefix(b":") {
        return Some(Target::Probe(nonce));
    }
    let (name, key) = match rest.iter().position(|&byte| byte == b':') {
        Some(colon) => (&rest[..colon], Some(&rest[colon + 1..])),
        None => (rest, None),
    };
    let name = std::str::from_utf8(name).ok()?;
    Some(match key {
        Some(key) => Target::Key(name, key),
        None => Target::All(name),
    })
}

/// A key of type `K` from the bytes a writer put in its marker, through redis-rs's own
/// `FromRedisValue`: integers, strings and byte vectors work as they are.
pub(crate) fn decode<K: FromRedisValue>(key: &[u8]) -> Option<K> {
    K::from_redis_value(Value::BulkString(key.to_vec())).ok()
}

#[cfg(all(test, not(ttlcache_loom)))]
mod tests {
    use super::*;

    #[test]
    fn a_key_crosses_as_its_redis_argument() {
        let prefix = prefix("app");
        let marker = of_key(&prefix, "users", &42_u64).unwrap();
        assert_eq!(marker, b"app:inv:users:42");
        let Some(Target::Key("users", key)) = parse(&prefix, &marker) else {
            panic!("a key marker parses as one key");
        };
        assert_eq!(decode::<u64>(key), Some(42));
        assert_eq!(decode::<String>(key).as_deref(), Some("42"));
    }

    #[test]
    fn a_key_may_hold_colons_but_a_name_may_not() {
        let prefix = prefix("app");
        let marker = of_key(&prefix, "sessions", &"user:7").unwrap();
        assert_eq!(
            parse(&prefix, &marker),
            Some(Target::Key("sessions", b"user:7"))
        );
        assert_eq!(
            parse(&prefix, &of_all(&prefix, "sessions")),
            Some(Target::All("sessions"))
        );
        assert_eq!(
            parse(&prefix, &of_probe(&prefix, "p1:2")),
            Some(Target::Probe(b"p1:2"))
        );
    }

    #[test]
    fn what_is_not_a_marker_is_told_apart() {
        assert_eq!(parse("app:inv:", b"other:inv:users:1"), None);
        assert_eq!(
            parse("app:inv:", b"app:users:1"),
            None,
            "an application key under the namespace is no marker"
        );
        assert_eq!(decode::<u64>(b"not a number"), None);
        assert_eq!(of_key("app:inv:", "pairs", &(1, 2)), None);
    }
}
