//! Replays real cache traces through ttlcache, moka, quick_cache and an exact LRU, in one run,
//! and prints their hit ratios beside the optimum.
//!
//! ```sh
//! cargo run --release --example hitratio                      # the small traces in ./traces
//! cargo run --release --example hitratio -- ../shared/traces  # every trace in a folder
//! cargo run --release --example hitratio -- DIR --csv out.csv --svg out.svg
//! cargo run --release --example hitratio -- DIR --shards 1   # ttlcache with one shard
//! cargo run --release --example hitratio -- DIR --runs 3     # each ratio the mean of 3 runs
//! cargo run --release --example hitratio -- DIR --bounded-moka # moka held to its capacity
//! ```
//!
//! moka applies writes to its policy in batches, when 64 are pending (moka 0.12), so between
//! batches it holds up to 64 entries beyond its capacity: 164 at a capacity of 100. On small
//! caches that is a large share of extra room. `--bounded-moka` runs moka's pending work after
//! every insert (`run_pending_tasks`), which holds it to its capacity as ttlcache and
//! quick_cache are, and labels its column `moka (bounded)`.
//!
//! Hashing is seeded at random (ttlcache's `DefaultHashBuilder`, moka's admission), so a ratio moves
//! from run to run by up to a point on the smaller traces; `--runs` averages that out.
//!
//! Protocol: for each key, `get`; on a miss, `insert(key, key)`; hit ratio = hits / requests.
//! The exact LRU must reproduce the LRU column of the traces' README: if it does not, the
//! replay itself is wrong and the tool exits with an error.

use std::{
    error::Error,
    fmt::Write as _,
    fs::File,
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    thread,
};

use flate2::read::GzDecoder;
use ttlcache::TtlCache;

/// A trace, the capacities to replay it at, and the reference hit ratios (%) from the traces'
/// README at those capacities: the optimum (Belady) and an exact LRU.
struct Trace {
    name: &'static str,
    capacities: &'static [u64],
    optimum: &'static [f64],
    lru: &'static [f64],
}

const TRACES: &[Trace] = &[
    Trace {
        name: "arc-OLTP",
        capacities: &[250, 500, 1000, 2000],
        optimum: &[38.43, 46.42, 53.61, 60.40],
        lru: &[16.47, 23.45, 32.83, 42.47],
    },
    Trace {
        name: "lirs-gli",
        capacities: &[250, 500, 1000, 2000],
        optimum: &[17.64, 34.26, 53.13, 57.96],
        lru: &[0.91, 0.95, 11.21, 57.41],
    },
    Trace {
        name: "lirs-loop",
        capacities: &[250, 500, 1000, 1250],
        optimum: &[24.63, 49.36, 98.71, 99.80],
        lru: &[0.00, 0.00, 0.00, 99.80],
    },
    Trace {
        name: "lirs-sprite",
        capacities: &[100, 500, 1000],
        optimum: &[50.80, 87.88, 93.24],
        lru: &[21.58, 78.30, 90.64],
    },
    Trace {
        name: "lirs-multi2",
        capacities: &[500, 2000],
        optimum: &[53.60, 74.65],
        lru: &[35.98, 49.00],
    },
    Trace {
        name: "lirs-2_pools",
        capacities: &[500, 2000],
        optimum: &[62.84, 75.34],
        lru: &[51.06, 59.33],
    },
    Trace {
        name: "lirs-ps",
        capacities: &[500, 1000],
        optimum: &[58.10, 67.67],
        lru: &[48.55, 48.55],
    },
    Trace {
        name: "cache2k-web12",
        capacities: &[1000, 5000],
        optimum: &[77.75, 85.61],
        lru: &[64.73, 80.70],
    },
    Trace {
        name: "arc-P3",
        capacities: &[25_000, 100_000, 300_000, 600_000],
        optimum: &[26.04, 62.00, 79.51, 80.51],
        lru: &[2.60, 29.34, 68.93, 80.16],
    },
];

/// The caches compared, in table order.
const CACHES: [&str; 4] = ["ttlcache", "moka", "quick_cache", "lru"];

/// One replayed row: hit ratios (%) in `CACHES` order.
struct Row {
    trace: &'static str,
    capacity: u64,
    optimum: f64,
    lru_reference: f64,
    hit_ratios: [f64; 4],
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let mut folder = PathBuf::from("traces");
    let (mut csv, mut svg, mut shards, mut runs) = (None, None, None, 1u32);
    let mut moka = Moka::AsShipped;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--runs" => runs = args.next().ok_or("--runs needs a count")?.parse()?,
            "--shards" => shards = Some(args.next().ok_or("--shards needs a count")?.parse()?),
            "--csv" => csv = Some(PathBuf::from(args.next().ok_or("--csv needs a file")?)),
            "--svg" => svg = Some(PathBuf::from(args.next().ok_or("--svg needs a file")?)),
            "--bounded-moka" => moka = Moka::Bounded,
            _ => folder = PathBuf::from(arg),
        }
    }

    let mut rows = Vec::new();
    for trace in TRACES {
        let path = folder.join(format!("{}.keys.gz", trace.name));
        if !path.exists() {
            continue;
        }
        let keys = read_keys(&path)?;
        for (at, &capacity) in trace.capacities.iter().enumerate() {
            let mut hit_ratios = [0.0; 4];
            for _ in 0..runs {
                let run = replay_all(&keys, capacity, shards, moka);
                for (sum, ratio) in hit_ratios.iter_mut().zip(run) {
                    *sum += ratio / f64::from(runs);
                }
            }
            let row = Row {
                trace: trace.name,
                capacity,
                optimum: trace.optimum[at],
                lru_reference: trace.lru[at],
                hit_ratios,
            };
            eprintln!("{}", row_line(&row));
            rows.push(row);
        }
    }
    if rows.is_empty() {
        return Err(format!("no traces found in {}", folder.display()).into());
    }

    println!("{}", table(&rows, moka));
    if let Some(path) = csv {
        std::fs::write(path, to_csv(&rows, moka))?;
    }
    if let Some(path) = svg {
        draw(&rows, &path, moka)?;
    }
    for row in &rows {
        let lru = row.hit_ratios[3];
        if (lru - row.lru_reference).abs() > 0.01 {
            return Err(format!(
                "the replay is wrong: exact LRU scores {lru:.2}% on {} at {}, \
                 the traces' README says {:.2}%",
                row.trace, row.capacity, row.lru_reference
            )
            .into());
        }
    }
    Ok(())
}

fn read_keys(path: &Path) -> Result<Vec<u64>, Box<dyn Error>> {
    let reader = BufReader::new(GzDecoder::new(File::open(path)?));
    let mut keys = Vec::new();
    for line in reader.lines() {
        let line = line?;
        let key = line.trim();
        if !key.is_empty() {
            keys.push(key.parse()?);
        }
    }
    Ok(keys)
}

/// How moka is run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Moka {
    /// With its defaults: writes reach its policy in batches.
    AsShipped,
    /// With its pending work run after every insert, so that it never holds more than its
    /// capacity.
    Bounded,
}

impl Moka {
    /// The column's name in the table and the chart.
    fn label(self) -> &'static str {
        match self {
            Moka::AsShipped => "moka",
            Moka::Bounded => "moka (bounded)",
        }
    }

    /// The column's name in the CSV file.
    fn csv_name(self) -> &'static str {
        match self {
            Moka::AsShipped => "moka",
            Moka::Bounded => "moka_bounded",
        }
    }
}

/// Replays `keys` through every cache at `capacity`, two at a time on the machine's cores.
/// `shards` overrides ttlcache's default shard count.
fn replay_all(keys: &[u64], capacity: u64, shards: Option<usize>, moka: Moka) -> [f64; 4] {
    let replay = |name: &str| -> f64 {
        let hits = match name {
            "ttlcache" => {
                let builder = TtlCache::builder().max_capacity(capacity);
                let cache = match shards {
                    Some(shards) => builder.shards(shards).build().unwrap(),
                    None => builder.build().unwrap(),
                };
                count_hits(
                    keys,
                    |key| cache.get(&key).is_some(),
                    |key| cache.insert(key, key),
                )
            }
            "moka" => {
                let cache = moka::sync::Cache::new(capacity);
                count_hits(
                    keys,
                    |key| cache.get(&key).is_some(),
                    |key| {
                        cache.insert(key, key);
                        if moka == Moka::Bounded {
                            cache.run_pending_tasks();
                        }
                    },
                )
            }
            "quick_cache" => {
                let cache = quick_cache::sync::Cache::new(capacity as usize);
                count_hits(
                    keys,
                    |key| cache.get(&key).is_some(),
                    |key| cache.insert(key, key),
                )
            }
            _ => {
                let mut lru = Lru::new(capacity as usize);
                keys.iter().filter(|&&key| lru.access(key)).count()
            }
        };
        100.0 * hits as f64 / keys.len() as f64
    };
    let mut ratios = [0.0; 4];
    thread::scope(|scope| {
        let handles: Vec<_> = CACHES
            .iter()
            .map(|&name| scope.spawn(move || replay(name)))
            .collect();
        for (ratio, handle) in ratios.iter_mut().zip(handles) {
            *ratio = handle.join().unwrap();
        }
    });
    ratios
}

fn count_hits(
    keys: &[u64],
    mut get: impl FnMut(u64) -> bool,
    mut insert: impl FnMut(u64),
) -> usize {
    let mut hits = 0;
    for &key in keys {
        if get(key) {
            hits += 1;
        } else {
            insert(key);
        }
    }
    hits
}

/// An exact LRU: a map to nodes of a doubly linked list kept in a vector.
struct Lru {
    capacity: usize,
    index: std::collections::HashMap<u64, usize>,
    nodes: Vec<(u64, usize, usize)>,
    /// The most recently used node; its `prev` is the least recently used.
    head: usize,
}

impl Lru {
    fn new(capacity: usize) -> Self {
        Self {
            capacity,
            index: std::collections::HashMap::with_capacity(capacity),
            nodes: Vec::with_capacity(capacity),
            head: 0,
        }
    }

    /// Records an access; returns whether it hit.
    fn access(&mut self, key: u64) -> bool {
        if let Some(&node) = self.index.get(&key) {
            self.unlink(node);
            self.push_front(node);
            return true;
        }
        if self.capacity == 0 {
            return false;
        }
        let node = if self.nodes.len() < self.capacity {
            self.nodes.push((key, 0, 0));
            self.nodes.len() - 1
        } else {
            let oldest = self.nodes[self.head].1;
            self.unlink(oldest);
            self.index.remove(&self.nodes[oldest].0);
            self.nodes[oldest].0 = key;
            oldest
        };
        self.index.insert(key, node);
        self.push_front(node);
        false
    }

    fn unlink(&mut self, node: usize) {
        let (_, prev, next) = self.nodes[node];
        if next == node {
            return;
        }
        self.nodes[prev].2 = next;
        self.nodes[next].1 = prev;
        if self.head == node {
            self.head = next;
        }
    }

    fn push_front(&mut self, node: usize) {
        if self.index.len() == 1 {
            self.nodes[node].1 = node;
            self.nodes[node].2 = node;
        } else {
            let oldest = self.nodes[self.head].1;
            self.nodes[node].1 = oldest;
            self.nodes[node].2 = self.head;
            self.nodes[oldest].2 = node;
            let head = self.head;
            self.nodes[head].1 = node;
        }
        self.head = node;
    }
}

fn row_line(row: &Row) -> String {
    let [ttl, moka, quick, lru] = row.hit_ratios;
    let best_peer = moka.max(quick);
    format!(
        "| {} | {} | {:.2} | {:.2} | **{:.2}** | {:.2} | {:.2} | {:+.2} |",
        row.trace,
        row.capacity,
        row.optimum,
        lru,
        ttl,
        moka,
        quick,
        ttl - best_peer
    )
}

fn table(rows: &[Row], moka: Moka) -> String {
    let mut out = format!(
        "| trace | capacity | optimum | LRU | ttlcache | {} | quick_cache | ttlcache − best peer |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|\n",
        moka.label()
    );
    for row in rows {
        writeln!(out, "{}", row_line(row)).unwrap();
    }
    let mean =
        |cache: usize| rows.iter().map(|r| r.hit_ratios[cache]).sum::<f64>() / rows.len() as f64;
    let optimum = rows.iter().map(|r| r.optimum).sum::<f64>() / rows.len() as f64;
    writeln!(
        out,
        "| **mean of {} rows** | | {optimum:.2} | {:.2} | **{:.2}** | {:.2} | {:.2} | {:+.2} |",
        rows.len(),
        mean(3),
        mean(0),
        mean(1),
        mean(2),
        mean(0) - mean(1).max(mean(2)),
    )
    .unwrap();
    let short: Vec<String> = rows
        .iter()
        .filter(|r| r.hit_ratios[0] < r.hit_ratios[1].max(r.hit_ratios[2]) - 0.5)
        .map(|r| format!("{} at {}", r.trace, r.capacity))
        .collect();
    if short.is_empty() {
        out.push_str("\nEvery row is within 0.5 points of the better peer, or above it.\n");
    } else {
        writeln!(
            out,
            "\nMore than 0.5 points below the better peer: {}.",
            short.join(", ")
        )
        .unwrap();
    }
    out
}

fn to_csv(rows: &[Row], moka: Moka) -> String {
    let mut out = format!(
        "trace,capacity,optimum,lru,ttlcache,{},quick_cache\n",
        moka.csv_name()
    );
    for row in rows {
        let [ttl, moka, quick, lru] = row.hit_ratios;
        writeln!(
            out,
            "{},{},{},{lru:.4},{ttl:.4},{moka:.4},{quick:.4}",
            row.trace, row.capacity, row.optimum
        )
        .unwrap();
    }
    out
}

/// Small multiples: one panel per trace, hit ratio against capacity, a line per cache.
fn draw(rows: &[Row], path: &Path, moka: Moka) -> Result<(), Box<dyn Error>> {
    use plotters::prelude::*;

    let traces: Vec<&str> = TRACES
        .iter()
        .map(|t| t.name)
        .filter(|name| rows.iter().any(|r| r.trace == *name))
        .collect();
    let columns = 3;
    let grid = (traces.len().div_ceil(columns), columns);
    let root = SVGBackend::new(path, (1200, 380 * grid.0 as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    /// A series' values: the optimum, or a cache's column in `Row::hit_ratios`.
    #[derive(Clone, Copy)]
    enum Values {
        Optimum,
        Column(usize),
    }
    let series: [(&str, Values, RGBColor, u32); 5] = [
        ("optimum", Values::Optimum, RGBColor(170, 170, 170), 1),
        ("LRU", Values::Column(3), RGBColor(120, 120, 120), 1),
        (moka.label(), Values::Column(1), RGBColor(230, 120, 30), 2),
        ("quick_cache", Values::Column(2), RGBColor(40, 150, 80), 2),
        ("ttlcache", Values::Column(0), RGBColor(30, 80, 200), 3),
    ];
    for (panel, trace) in root.split_evenly(grid).iter().zip(&traces) {
        let points: Vec<&Row> = rows.iter().filter(|r| r.trace == *trace).collect();
        let capacities: Vec<u64> = points.iter().map(|r| r.capacity).collect();
        let mut chart = ChartBuilder::on(panel)
            .caption(*trace, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(40)
            .build_cartesian_2d(-0.3f64..(points.len() as f64 - 0.7), 0f64..100f64)?;
        chart
            .configure_mesh()
            .x_labels(points.len())
            .x_label_formatter(&|x| {
                let at = x.round();
                if (x - at).abs() < 1e-6 && at >= 0.0 && (at as usize) < capacities.len() {
                    format!("{}", capacities[at as usize])
                } else {
                    String::new()
                }
            })
            .y_desc("hit ratio %")
            .draw()?;
        for (name, values, color, width) in series {
            let value = |row: &Row| match values {
                Values::Optimum => row.optimum,
                Values::Column(column) => row.hit_ratios[column],
            };
            let line: Vec<(f64, f64)> = points
                .iter()
                .enumerate()
                .map(|(at, row)| (at as f64, value(row)))
                .collect();
            let style = ShapeStyle::from(&color).stroke_width(width);
            chart
                .draw_series(LineSeries::new(line.clone(), style))?
                .label(name)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], style));
            chart.draw_series(PointSeries::of_element(
                line,
                3,
                style.filled(),
                &|c, s, st| Circle::new(c, s, st),
            ))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    root.present()?;
    Ok(())
}
