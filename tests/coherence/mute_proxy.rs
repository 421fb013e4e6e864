//! A proxy in front of a real `redis-server` that passes every command and reply but drops
//! RESP3 pushes: what a proxy that accepts `CLIENT TRACKING` and never pushes looks like to a
//! client. It listens on loopback and serves until the test process ends.

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    thread,
};

/// Starts the proxy in front of `127.0.0.1:upstream`; returns its URL.
pub(crate) fn start(upstream: u16) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    thread::spawn(move || {
        for client in listener.incoming() {
            let Ok(client) = client else { return };
            let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)) else {
                continue;
            };
            let (client_in, server_out) =
                (client.try_clone().unwrap(), server.try_clone().unwrap());
            thread::spawn(move || copy(client_in, server_out));
            thread::spawn(move || copy_without_pushes(server, client));
        }
    });
    format!("redis://127.0.0.1:{port}/")
}

fn copy(mut from: TcpStream, mut to: TcpStream) {
    let mut buffer = [0; 16 << 10];
    while let Ok(read @ 1..) = from.read(&mut buffer) {
        if to.write_all(&buffer[..read]).is_err() {
            return;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}

fn copy_without_pushes(mut from: TcpStream, mut to: TcpStream) {
    let mut pending = Vec::new();
    let mut buffer = [0; 16 << 10];
    while let Ok(read @ 1..) = from.read(&mut buffer) {
        pending.extend_from_slice(&buffer[..read]);
        while let Some(length) = frame_length(&pending) {
            let frame: Vec<u8> = pending.drain(..length).collect();
            if frame[0] != b'>' && to.write_all(&frame).is_err() {
                return;
            }
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}

/// The length of the RESP3 frame `bytes` starts with, once all of it is there.
fn frame_length(bytes: &[u8]) -> Option<usize> {
    let line = bytes.windows(2).position(|pair| pair == b"\r\n")?;
    let header = std::str::from_utf8(&bytes[1..line]).ok()?;
    let mut at = line + 2;
    let elements = match bytes[0] {
        b'+' | b'-' | b':' | b',' | b'_' | b'#' | b'(' => return Some(at),
        b'$' | b'!' | b'=' => {
            let length: i64 = header.parse().ok()?;
            if length < 0 {
                return Some(at);
            }
            let end = at + length as usize + 2;
            return (bytes.len() >= end).then_some(end);
        }
        b'*' | b'~' | b'>' => header.parse::<i64>().ok()?,
        b'%' => 2 * header.parse::<i64>().ok()?,
        // An attribute: its pairs, then the value it annotates.
        b'|' => 2 * header.parse::<i64>().ok()? + 1,
        other => panic!("not RESP3: {:?}", other as char),
    };
    for _ in 0..elements.max(0) {
        at += frame_length(&bytes[at..])?;
    }
    Some(at)
}
