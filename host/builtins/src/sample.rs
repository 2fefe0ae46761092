//! Deterministic sample inputs for the built-ins: a cluster and its pending tasks, a table
//! with planted bad rows, and a round of model updates. Used by `infra demo` and the
//! benchmarks; seeded, so every run sees the same data.

use infra_runtime::cleaner::Batch;
use infra_runtime::scheduler::{Holding, Node, Pending, Resources, Task, Tier};

/// A small, fast, seeded generator (xorshift64*), enough for sample data.
pub struct Rng(u64);

impl Rng {
    /// Seeds the generator (0 is remapped).
    pub fn new(seed: u64) -> Self {
        Self(seed.max(1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo).max(1)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `n` nodes: three servers for every edge board.
pub fn nodes(n: usize, seed: u64) -> Vec<Node> {
    let mut r = Rng::new(seed);
    (0..n)
        .map(|i| {
            let edge = i % 4 == 3;
            let capacity = if edge {
                Resources {
                    cpu_millis: 4000,
                    memory_mib: 4096,
                    gpus: 0,
                }
            } else {
                Resources {
                    cpu_millis: 16_000,
                    memory_mib: 65_536,
                    gpus: r.range(0, 3) as u32,
                }
            };
            let used = r.unit() * 0.5;
            let free = Resources {
                cpu_millis: (capacity.cpu_millis as f64 * (1.0 - used)) as u32,
                memory_mib: (capacity.memory_mib as f64 * (1.0 - used)) as u64,
                gpus: capacity.gpus,
            };
            Node {
                id: format!("{}-{i:03}", if edge { "edge" } else { "server" }),
                tier: if edge { Tier::Edge } else { Tier::Server },
                capacity,
                free,
                load: used as f32,
                labels: vec![("zone".into(), format!("z{}", i % 3))],
                rtt_ms: if edge {
                    20.0 + r.unit() as f32 * 60.0
                } else {
                    0.2 + r.unit() as f32 * 2.0
                },
                bandwidth_bytes_per_s: if edge {
                    r.range(2_000_000, 20_000_000)
                } else {
                    r.range(100_000_000, 1_250_000_000)
                },
            }
        })
        .collect()
}

/// `n` pending tasks of one job on `nodes`; about 30 % of the inputs already sit on one of
/// the nodes (a `holding` row).
pub fn pending(n: usize, nodes: Vec<Node>, seed: u64) -> Pending {
    let mut r = Rng::new(seed ^ 0xA5A5);
    let mut holdings = Vec::new();
    let tasks = (0..n)
        .map(|i| {
            if r.unit() < 0.3 && !nodes.is_empty() {
                holdings.push(Holding {
                    task: i as u32,
                    node: r.range(0, nodes.len() as u64) as u32,
                });
            }
            Task {
                id: i as u64,
                job: 0,
                priority: r.range(0, 10) as i32,
                demand: Resources {
                    cpu_millis: r.range(250, 4000) as u32,
                    memory_mib: r.range(256, 8192),
                    gpus: (r.unit() < 0.1) as u32,
                },
                est_duration_ms: r.range(1_000, 600_000),
                input_bytes: r.range(1 << 20, 2 << 30),
                attempts: 0,
            }
        })
        .collect();
    Pending {
        jobs: vec!["sample".into()],
        tasks,
        nodes,
        holdings,
    }
}

/// A digits-like table (`width` columns, labels `0..classes`) of `rows` rows, with planted
/// bad rows: every 17th has a NaN, every 23rd a label out of range, every 29th repeats the
/// row before it. Returns the batch and the planted counts (non-finite, out-of-range,
/// duplicate), with overlaps resolved in that order.
pub fn dirty_table(rows: usize, width: usize, classes: i32, seed: u64) -> (Batch, [u64; 3]) {
    let mut r = Rng::new(seed ^ 0x5A5A);
    let mut features = Vec::with_capacity(rows * width);
    let mut labels = Vec::with_capacity(rows);
    let mut planted = [0u64; 3];
    for i in 0..rows {
        if i % 29 == 28 && i % 17 != 16 && i % 23 != 22 && (i - 1) % 17 != 16 && (i - 1) % 23 != 22
        {
            let prev = features[(i - 1) * width..i * width].to_vec();
            features.extend_from_slice(&prev);
            labels.push(labels[i - 1]);
            planted[2] += 1;
            continue;
        }
        for _ in 0..width {
            features.push((r.unit() * 16.0) as f32);
        }
        let mut label = r.range(0, classes as u64) as i32;
        if i % 17 == 16 {
            features[i * width] = f32::NAN;
            planted[0] += 1;
        } else if i % 23 == 22 {
            label = classes + 3;
            planted[1] += 1;
        }
        labels.push(label);
    }
    let columns = (0..width).map(|c| format!("px{c}")).collect();
    (
        Batch {
            columns,
            features,
            labels,
        },
        planted,
    )
}

/// `n` model updates of `params` coordinates scattered around `center`; the last
/// `byzantine` of them are far off (x100), as a poisoned peer would send.
pub fn updates(n: usize, params: usize, byzantine: usize, seed: u64) -> (Vec<f32>, Vec<Vec<f32>>) {
    let mut r = Rng::new(seed ^ 0x3C3C);
    let center: Vec<f32> = (0..params).map(|_| r.unit() as f32 - 0.5).collect();
    let ups = (0..n)
        .map(|k| {
            let scale = if k >= n - byzantine { 100.0 } else { 1.0 };
            center
                .iter()
                .map(|c| scale * (c + (r.unit() as f32 - 0.5) * 0.01))
                .collect()
        })
        .collect();
    (center, ups)
}
