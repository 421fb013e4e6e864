#!/usr/bin/env bash
# Every check: formatting, lints, unit, integration and doc tests, loom models, docs.
# This is the README's test command; .ci/run calls it after installing what it needs.
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n== %s\n' "$*"; }

step "format"
cargo fmt --all -- --check

step "lints"
cargo clippy --workspace --all-targets --all-features -- -D warnings
cargo clippy --lib --no-default-features -- -D warnings

step "unit, integration, doc and compile-fail tests (the workspace: ttlcache and its macros)"
cargo test --workspace --all-features

step "hit-ratio replay, on the small traces in ./traces (fails if its exact LRU is off)"
cargo run --quiet --all-features --example hitratio > /dev/null

step "warm restart example (fails unless a restored cache beats an empty one)"
cargo run --quiet --all-features --example warm_restart > /dev/null

step "replicas example (three replicas on a redis-server of its own; fails on a stale read)"
cargo run --quiet --all-features --example replicas > /dev/null

step "dataloader example (fails unless batching turns 100 queries into 1)"
cargo run --quiet --all-features --example dataloader > /dev/null

step "service example (serves HTTP under load; fails unless the cache spares the database, /metrics lists it, and a warm restart restores it)"
cargo run --quiet --all-features --example service -- --load --seconds 2 > /dev/null

step "benches compile (they are run by hand: see BENCHMARKS.md)"
cargo bench --all-features --no-run

step "docs"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --all-features

step "loom models (loom-tests/, compiled into the library under the cfg)"
# A target directory of their own: the cfg changes every artifact, and sharing one with the
# steps above would rebuild both each time. Under the cfg the library's other unit tests are
# left out, so this runs the models only.
RUSTFLAGS="--cfg ttlcache_loom" LOOM_MAX_PREEMPTIONS="${LOOM_MAX_PREEMPTIONS:-2}" \
    cargo test --release --features serde --lib --target-dir target/loom loom_models

step "all checks passed"
