//! The Byzantine table: final accuracy of every built-in aggregator under every attack of the
//! harness (`infra_tests::byzantine`), against its own clean run, on digits with 1 of 5 and 2
//! of 7 clients malicious (40 rounds, 3 local epochs each).

use crate::Row;
use infra_tests::byzantine::{run, spec, Attack};

const ROUNDS: u32 = 40;

/// The aggregators and their configuration for `k` of `n` malicious.
fn rules(n: usize, k: usize) -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    vec![
        ("fedavg", vec![]),
        ("median", vec![]),
        // Trims at least the k malicious values at each end (ceil(trim * n) >= k).
        (
            "trimmed-mean",
            vec![("trim", format!("{:.2}", (k as f64 - 0.5) / n as f64))],
        ),
        // Multi-Krum: averages the n - f - 1 updates closest to their neighbours.
        (
            "krum",
            vec![("f", k.to_string()), ("m", (n - k - 1).to_string())],
        ),
    ]
}

pub fn run_all(runtime: &infra_runtime::Runtime) -> Vec<Row> {
    let mut rows = Vec::new();
    for (n, k) in [(5, 1), (7, 2)] {
        for (agg, config) in rules(n, k) {
            let config: Vec<(&str, &str)> = config.iter().map(|(a, b)| (*a, b.as_str())).collect();
            let acc = |attack| {
                run(runtime, spec(agg, &config, n, k, ROUNDS), k, attack)
                    .map(|o| o.accuracy)
                    .unwrap_or(f64::NAN)
            };
            let clean = acc(None);
            let cells: Vec<String> = Attack::ALL
                .iter()
                .map(|&a| {
                    let got = acc(Some(a));
                    format!(
                        "{}: {:.1} ({:+.1})",
                        a.name(),
                        got * 100.0,
                        (got - clean) * 100.0
                    )
                })
                .collect();
            let config = config
                .iter()
                .map(|(a, b)| format!("{a}={b}"))
                .collect::<Vec<_>>()
                .join(" ");
            rows.push(Row {
                what: format!("{agg} {config}, {k} of {n} malicious, digits, {ROUNDS} rounds"),
                wasm: cells.join("; "),
                native: format!("clean {:.1} %", clean * 100.0),
                ratio: "points against clean".into(),
                target: "robust rules within 2 points at 1 of 5".into(),
            });
        }
    }
    rows
}
