//! No part of a password ever shows (feature `redis`), against a real `redis-server`: not in
//! `Debug`, `Display`, errors, [`Health`](ttlcache::redis::Health) or tracing output, whatever
//! the password holds. Alone in its test binary, so that its subscriber is the process's
//! before any coherence exists.

#![cfg(all(feature = "redis", feature = "tracing"))]

#[allow(dead_code, reason = "the fault injection this test does not need")]
#[path = "coherence/server.rs"]
mod server;
#[path = "coherence/support.rs"]
mod support;

use std::{
    io,
    sync::{Arc, Mutex, OnceLock},
};

use server::RedisServer;
use support::{eventually, fast, holding, replica, run, steady, users};
use ttlcache::redis::Coherence;

/// What every subscriber of this test binary wrote: the coherence's thread reports here.
fn traced() -> &'static Mutex<Vec<u8>> {
    static WRITTEN: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    WRITTEN.get_or_init(|| {
        let written = Arc::new(Mutex::new(Vec::new()));
        let sink = Sink(Arc::clone(&written));
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || sink.clone())
            .finish();
        tracing::subscriber::set_global_default(subscriber).unwrap();
        written
    })
}

#[derive(Clone)]
struct Sink(Arc<Mutex<Vec<u8>>>);

impl io::Write for Sink {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `text` holds no piece of `password` two characters or longer between its `#?@:/`.
fn shows_no_part_of(text: &str, password: &str) -> bool {
    password
        .split(['#', '?', '@', ':', '/'])
        .all(|piece| piece.len() < 2 || !text.contains(piece))
}

#[test]
fn a_wrong_password_is_a_readable_reason_and_no_part_of_it_is_ever_shown() {
    let written = traced();
    run(|| async {
        let server = RedisServer::start();
        let good = "Xg#Rq?Wz@Lk:Mv";
        let wrong = "Hj#Tp?Bn@Cs:Dy";
        server.cli(&[
            "ACL",
            "SETUSER",
            "app",
            "on",
            &format!(">{good}"),
            "~*",
            "&*",
            "+@all",
        ]);
        let encoded = |password: &str| {
            password
                .replace('#', "%23")
                .replace('?', "%3F")
                .replace('@', "%40")
                .replace(':', "%3A")
        };
        let at = |password: &str| {
            server.url().replacen(
                "redis://",
                &format!("redis://app:{}@", encoded(password)),
                1,
            )
        };
        let refused = fast(Coherence::builder(&at(wrong), "app"))
            .connect()
            .await
            .unwrap();
        assert!(
            eventually(|| refused.health().last_error.is_some()).await,
            "no reason"
        );
        let health = refused.health();
        let error = health.last_error.clone().unwrap();
        assert!(
            error.contains("WRONGPASS") || error.contains("password"),
            "{error}"
        );
        let sent = users(&refused).invalidate_everywhere(&1).await.unwrap_err();

        // A good password works, and is shown nowhere either.
        let a = replica(&server, "app").await;
        let right = steady(Coherence::builder(&at(good), "app"))
            .connect()
            .await
            .unwrap();
        assert!(eventually(|| right.is_healthy()).await);
        let users_right = users(&right);
        holding(&users_right, 1, "one").await;
        users(&a).invalidate_everywhere(&1).await.unwrap();
        assert!(eventually(|| users_right.get(&1).is_none()).await);

        let mut shown = vec![
            format!("{health:?}"),
            format!("{refused:?} {right:?}"),
            format!("{sent} {sent:?}"),
            format!("{:?}", Coherence::builder(&at(good), "app")),
        ];
        // Unencoded, the password moves every boundary of the URL's text.
        for password in [good, wrong] {
            let raw = format!("redis://app:{password}@127.0.0.1:6379/");
            shown.push(format!("{:?}", Coherence::builder(&raw, "app")));
            if let Err(error) = Coherence::connect(&raw, "app").await {
                shown.push(format!("{error} {error:?}"));
            }
        }
        shown.push(String::from_utf8_lossy(&written.lock().unwrap()).into_owned());
        for text in &shown {
            assert!(shows_no_part_of(text, good), "{text}");
            assert!(shows_no_part_of(text, wrong), "{text}");
        }
        assert!(
            shown.last().unwrap().contains("coherence fault"),
            "the fault was traced"
        );
    });
}
