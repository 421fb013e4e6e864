//! Secrets kept out of every message: a URL is shown as redis-rs parsed it, never as the text
//! the user gave, and any message from Redis or redis-rs has the password cut out.
//!
//! Cutting a password out of URL text is guesswork (an unencoded `#`, `?`, `@` or `/` in a
//! password moves every boundary), so the text is never shown: what is shown is rebuilt from
//! the parsed address, database and user name, and a URL that does not parse shows nothing.

use std::collections::HashSet;

use redis::{ConnectionInfo, IntoConnectionInfo};

/// `url` for `Debug`: its address, database and user, never its password or query.
pub(crate) fn url(url: &str) -> String {
    match url.into_connection_info() {
        // An `@` that left no password behind: an unencoded one may have been read as a
        // host or port, and would show there.
        Ok(info) if url.contains('@') && info.redis_settings().password().is_none() => {
            "<a Redis URL with a user part that does not parse>".to_owned()
        }
        Ok(info) => shown(&info),
        Err(_) => "<not a Redis URL>".to_owned(),
    }
}

/// A parsed connection, shown without its password.
pub(crate) fn shown(info: &ConnectionInfo) -> String {
    let settings = info.redis_settings();
    let user = match (settings.username(), settings.password()) {
        (Some(user), _) => format!("{user}:***@"),
        (None, Some(_)) => ":***@".to_owned(),
        (None, None) => String::new(),
    };
    format!("{user}{}/{}", info.addr(), settings.db())
}

/// `message` with every occurrence of the connection's password (and of its longer
/// fragments, should a message cut it) replaced by `***`.
pub(crate) fn scrubbed(message: &str, info: &ConnectionInfo) -> String {
    match info.redis_settings().password() {
        Some(password) if !password.is_empty() => scrub(message, password),
        _ => message.to_owned(),
    }
}

/// `message` with `secret` cut out, and any piece of it of [`PIECE`] characters or more: a
/// message that quotes part of a password quotes no part of it here. One pass over each.
fn scrub(message: &str, secret: &str) -> String {
    let secret: Vec<char> = secret.chars().collect();
    if secret.len() < PIECE {
        return message.replace(&secret.iter().collect::<String>(), "***");
    }
    let pieces: HashSet<&[char]> = secret.windows(PIECE).collect();
    let chars: Vec<char> = message.chars().collect();
    let mut hidden = vec![false; chars.len()];
    for (at, window) in chars.windows(PIECE).enumerate() {
        if pieces.contains(window) {
            hidden[at..at + PIECE].fill(true);
        }
    }
    let mut scrubbed = String::with_capacity(message.len());
    for (index, (&char, &hide)) in chars.iter().zip(&hidden).enumerate() {
        match hide {
            false => scrubbed.push(char),
            true if index == 0 || !hidden[index - 1] => scrubbed.push_str("***"),
            true => {}
        }
    }
    scrubbed
}

/// The shortest piece of a password that is cut out of messages on its own.
const PIECE: usize = 4;

#[cfg(all(test, not(ttlcache_loom)))]
mod tests {
    use super::*;

    #[test]
    fn no_part_of_a_password_is_shown_whatever_it_holds() {
        for password in ["hunter2", "pa#ss", "pa?ss", "p@ss", "pa:ss", "a/b#c?d@e:f"] {
            for shape in [
                format!("redis://app:{password}@db:6379/0"),
                format!("rediss://:{password}@db/"),
                format!("redis://db/?pass={password}"),
                format!("redis+unix:///run/redis.sock?user=app&pass={password}"),
            ] {
                let shown = url(&shape);
                for piece in password.split(['#', '?', '@', ':', '/']) {
                    assert!(
                        piece.len() < 2 || !shown.contains(piece),
                        "{piece:?} of {password:?} in {shown:?}"
                    );
                }
            }
        }
        assert_eq!(url("redis://app:hunter2@db:6379/0"), "app:***@db:6379/0");
        assert_eq!(url("redis://db/"), "db:6379/0");
        assert_eq!(url("mysql://db/"), "<not a Redis URL>");
        // Unencoded, `#` ends the authority: the password's first part reads as a port.
        assert!(!url("redis://app:6379#x@db/").contains("6379"));
    }

    #[test]
    fn a_long_token_is_scrubbed_in_one_pass() {
        let token: String = (0..2_048)
            .map(|i| char::from(b'a' + (i * 7 % 26) as u8))
            .collect();
        let info = format!("redis://app:{token}@db/")
            .into_connection_info()
            .unwrap();
        let message = format!("refused {token} and {}", &token[100..600]);
        assert_eq!(scrubbed(&message, &info), "refused *** and ***");
    }

    #[test]
    fn a_message_that_quotes_a_password_is_scrubbed() {
        let info = "redis://app:s3cr3t-Pa55@db/"
            .into_connection_info()
            .unwrap();
        assert_eq!(
            scrubbed("auth failed for s3cr3t-Pa55 and s3cr3t", &info),
            "auth failed for *** and ***"
        );
    }
}
