//! A test crate of the workspace: an application that enables rustls's `aws_lc_rs` provider
//! beside ttlcache's `ring` (see `tests/`). It has no code of its own.
#![forbid(unsafe_code)]
