//! Configuration read from a file, kept fresh by `refresh_every`; the example edits the file
//! while it runs and a subscriber sees the new value.
//!
//! `cargo run --release --example config`

use std::{path::PathBuf, sync::Arc, time::Duration};

use ttlcache::AsyncLazy;

#[derive(Debug, Clone, PartialEq)]
struct Config {
    replicas: u32,
    mode: String,
}

/// Parses `key = value` lines.
fn parse(text: &str) -> Result<Config, std::io::Error> {
    parse_settings(text).map_err(std::io::Error::other)
}

fn parse_settings(text: &str) -> Result<Config, String> {
    let mut replicas = None;
    let mut mode = None;
    for line in text.lines().map(str::trim).filter(|line| !line.is_empty()) {
        let (key, value) = line
            .split_once('=')
            .ok_or_else(|| format!("not `key = value`: {line:?}"))?;
        match key.trim() {
            "replicas" => {
                replicas = Some(value.trim().parse().map_err(|e| format!("replicas: {e}"))?)
            }
            "mode" => mode = Some(value.trim().to_string()),
            other => return Err(format!("unknown setting {other:?}")),
        }
    }
    Ok(Config {
        replicas: replicas.ok_or("missing `replicas`")?,
        mode: mode.ok_or("missing `mode`")?,
    })
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path: PathBuf =
        std::env::temp_dir().join(format!("ttlcache-config-{}.conf", std::process::id()));
    std::fs::write(&path, "replicas = 3\nmode = primary\n")?;

    let file = path.clone();
    let config = AsyncLazy::try_builder(move || {
        let file = file.clone();
        async move {
            let text = tokio::fs::read_to_string(&file).await?;
            parse(&text)
        }
    })
    .refresh_every(Duration::from_millis(200))
    .build()?;

    println!("loaded:     {:?}", config.try_get().await?);

    // A subscriber sees each new value as it is loaded.
    let mut updates = config.subscribe();
    let subscriber = tokio::spawn(async move {
        let mut seen = Vec::new();
        while updates.changed().await.is_ok() {
            let value: Option<Arc<Config>> = updates.borrow_and_update().clone();
            if let Some(value) = value {
                println!("subscriber: {value:?}");
                seen.push(value.clone());
                if value.mode == "replica" {
                    break;
                }
            }
        }
        seen
    });

    // An operator edits the file: a broken edit first, then a good one.
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::write(&path, "replicas = many\n")?;
    tokio::time::sleep(Duration::from_millis(300)).await;
    println!(
        "after a broken edit, readers keep the last good value {:?}; last error: {}",
        config.try_get().await?,
        config
            .last_error()
            .map_or("none".to_string(), |e| e.to_string())
    );
    std::fs::write(&path, "replicas = 5\nmode = replica\n")?;

    let seen = tokio::time::timeout(Duration::from_secs(5), subscriber).await??;
    println!("readers now see: {:?}", config.try_get().await?);
    assert_eq!(seen.last().map(|c| c.replicas), Some(5));
    std::fs::remove_file(&path)?;
    Ok(())
}
