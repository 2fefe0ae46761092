//! The host's side of a `weighted-sum` merge plan: checking the plugin's weights, the sum
//! itself (native, auto-vectorised), and naming the culprit of a non-finite result.

use super::UpdateRef;
use crate::bindings::aggregator::exports::infra::plugins::aggregation::SumWeights;

/// Coordinates summed per block: the block of the output (16 KiB) stays in L1 while every
/// update adds its share, so each input is read once from memory and the output written once.
const BLOCK: usize = 4096;

/// Why a plan cannot be carried out; the caller turns it into the plugin's contract error.
pub(super) fn check(weights: &SumWeights, updates: usize) -> Result<(), String> {
    if weights.updates.len() != updates {
        return Err(format!(
            "plan-merge gave {} weights for {} updates",
            weights.updates.len(),
            updates
        ));
    }
    if !weights.global.is_finite() {
        return Err(format!(
            "plan-merge gave a non-finite weight ({}) for the global parameters",
            weights.global
        ));
    }
    if let Some((k, w)) = weights
        .updates
        .iter()
        .enumerate()
        .find(|(_, w)| !w.is_finite())
    {
        return Err(format!(
            "plan-merge gave a non-finite weight ({w}) for update {k}"
        ));
    }
    Ok(())
}

/// `out[i] = weights.global * global[i] + Σ weights.updates[k] * updates[k][i]`, skipping
/// every term whose weight is 0. Terms are added in order, each product rounded before its
/// addition (no fused multiply-add), so the result is bit for bit what a plugin computing
/// the same sum chunk by chunk in f32 gets.
pub(super) fn compute(
    out: &mut [f32],
    global: &[f32],
    weights: &SumWeights,
    updates: &[UpdateRef<'_>],
) {
    let terms: Vec<(f32, &[f32])> = weights
        .updates
        .iter()
        .zip(updates)
        .filter(|(w, _)| **w != 0.0)
        .map(|(w, u)| (*w, u.params))
        .collect();
    let g = weights.global;
    for (b, o) in out.chunks_mut(BLOCK).enumerate() {
        let range = b * BLOCK..b * BLOCK + o.len();
        if g == 0.0 {
            o.fill(0.0);
        } else {
            for (o, x) in o.iter_mut().zip(&global[range.clone()]) {
                *o = g * x;
            }
        }
        // Four updates per pass over the block, then the rest one by one; each term is
        // still added in order.
        let mut rest = &terms[..];
        while let [(w0, x0), (w1, x1), (w2, x2), (w3, x3), tail @ ..] = rest {
            let n = o.len();
            let xs = [x0, x1, x2, x3].map(|x| &x[range.clone()][..n]);
            for i in 0..n {
                o[i] = (((o[i] + w0 * xs[0][i]) + w1 * xs[1][i]) + w2 * xs[2][i]) + w3 * xs[3][i];
            }
            rest = tail;
        }
        for (w, x) in rest {
            for (o, x) in o.iter_mut().zip(&x[range.clone()]) {
                *o += w * x;
            }
        }
    }
}

/// For a result with a non-finite value at `i`: the first weighted update holding a
/// non-finite value there, else an overflow of the sum.
pub(super) fn explain_non_finite(
    i: usize,
    global: &[f32],
    weights: &SumWeights,
    updates: &[UpdateRef<'_>],
) -> String {
    if weights.global != 0.0 && !global[i].is_finite() {
        return format!(
            "weighted sum: the global parameters have a non-finite value ({}) at coordinate {i}",
            global[i]
        );
    }
    match weights
        .updates
        .iter()
        .zip(updates)
        .find(|(w, u)| **w != 0.0 && !u.params[i].is_finite())
    {
        Some((_, u)) => format!(
            "weighted sum: update from peer {} has a non-finite value ({}) at coordinate {i}",
            u.peer, u.params[i]
        ),
        None => format!("weighted sum: the result overflows at coordinate {i}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refs<'a>(ups: &'a [Vec<f32>], peers: &'a [&'a str]) -> Vec<UpdateRef<'a>> {
        ups.iter()
            .zip(peers)
            .map(|(u, p)| UpdateRef {
                peer: p,
                samples: 1,
                loss: 0.0,
                params: u,
            })
            .collect()
    }

    #[test]
    fn sums_across_blocks_and_skips_zero_weights() {
        let n = 2 * BLOCK + 3;
        let global: Vec<f32> = (0..n).map(|i| i as f32).collect();
        let mut poisoned = vec![1.0f32; n];
        poisoned[BLOCK + 1] = f32::NAN;
        // Five weighted updates: one pass of four, then one on its own.
        let ups = vec![
            vec![2.0f32; n],
            poisoned,
            vec![-4.0f32; n],
            vec![8.0f32; n],
            vec![1.0f32; n],
            vec![3.0f32; n],
        ];
        let refs = refs(&ups, &["a", "b", "c", "d", "e", "f"]);
        let w = SumWeights {
            global: 0.5,
            updates: vec![0.25, 0.0, 0.5, 0.125, 2.0, -1.0],
        };
        check(&w, 6).unwrap();
        let mut out = vec![f32::NAN; n];
        compute(&mut out, &global, &w, &refs);
        for (i, o) in out.iter().enumerate() {
            let want = 0.5 * i as f32 + 0.5 - 2.0 + 1.0 + 2.0 - 3.0;
            assert_eq!(*o, want, "coordinate {i}");
        }
    }

    #[test]
    fn bad_weights_and_non_finite_results_are_named() {
        let w = |global, updates| SumWeights { global, updates };
        assert_eq!(
            check(&w(0.0, vec![1.0]), 2).unwrap_err(),
            "plan-merge gave 1 weights for 2 updates"
        );
        assert!(check(&w(f32::INFINITY, vec![1.0]), 1)
            .unwrap_err()
            .contains("non-finite weight (inf) for the global parameters"));
        assert!(check(&w(0.0, vec![1.0, f32::NAN]), 2)
            .unwrap_err()
            .contains("non-finite weight (NaN) for update 1"));

        let global = vec![f32::NAN, 0.0, 0.0];
        let ups = vec![vec![0.0, f32::INFINITY, f32::MAX]];
        let refs = refs(&ups, &["p"]);
        let plan = w(1.0, vec![2.0]);
        let explain = |i| explain_non_finite(i, &global, &plan, &refs);
        assert!(explain(0)
            .contains("the global parameters have a non-finite value (NaN) at coordinate 0"));
        assert!(
            explain(1).contains("update from peer p has a non-finite value (inf) at coordinate 1")
        );
        assert!(explain(2).contains("the result overflows at coordinate 2"));
    }
}
