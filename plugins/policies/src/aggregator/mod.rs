//! Aggregation strategies over streamed coordinate chunks (see the WIT `aggregation` docs).
//!
//! Non-finite values: `fedavg` refuses an update carrying NaN/inf with an error naming its
//! peer and coordinate (averaging would spread it to the whole model); the robust rules skip
//! them (`median`, `trimmed-mean` per coordinate, `krum` by scoring such an update +inf).

mod fedavg;
mod krum;
mod median;
mod simd;

pub use simd::{all_finite, weighted_sum};
mod trimmed_mean;

pub use fedavg::FedAvg;
pub use krum::Krum;
pub use median::Median;
pub use trimmed_mean::TrimmedMean;

use infra_sdk::RoundInfo;

/// Checks that a chunk call matches the round: one slice per update, all of `global`'s length.
pub(crate) fn check_chunk(
    round: Option<&RoundInfo>,
    global_len: usize,
    updates: &[Vec<f32>],
) -> Result<(), String> {
    let info = round.ok_or("chunk before begin-round")?;
    if updates.len() != info.updates.len() {
        return Err(format!(
            "chunk has {} updates, the round announced {}",
            updates.len(),
            info.updates.len()
        ));
    }
    if let Some((i, u)) = updates
        .iter()
        .enumerate()
        .find(|(_, u)| u.len() != global_len)
    {
        return Err(format!(
            "update {} (peer {}) has {} values in a chunk of {}",
            i,
            info.updates[i].peer,
            u.len(),
            global_len
        ));
    }
    Ok(())
}

/// Largest number of updates sorted by `simd::sort_columns`'s network (`n` passes); beyond it,
/// and for chunks with non-finite values, each coordinate is sorted on its own.
pub(crate) const NETWORK_MAX_UPDATES: usize = 32;

/// Sorts every column of the chunk's updates in place when they are all finite and few enough
/// for the sorting network, and says whether it did (otherwise the caller takes
/// [`coordinate_wise`]).
pub(crate) fn sort_columns_if_finite(updates: &mut [Vec<f32>]) -> bool {
    if updates.is_empty()
        || updates.len() > NETWORK_MAX_UPDATES
        || !updates.iter().all(|u| simd::all_finite(u))
    {
        return false;
    }
    simd::sort_columns(updates);
    true
}

/// Applies `per_coordinate` to the finite values of every coordinate of the chunk; a
/// coordinate where no update is finite keeps its global value.
pub(crate) fn coordinate_wise(
    mut global: Vec<f32>,
    updates: &[Vec<f32>],
    mut per_coordinate: impl FnMut(&mut [f32]) -> f32,
) -> Vec<f32> {
    let mut column = Vec::with_capacity(updates.len());
    for (i, g) in global.iter_mut().enumerate() {
        column.clear();
        column.extend(updates.iter().map(|u| u[i]).filter(|v| v.is_finite()));
        if !column.is_empty() {
            sort_small(&mut column);
            *g = per_coordinate(&mut column);
        }
    }
    global
}

/// Insertion sort: the fastest for the handful of updates a round has.
fn sort_small(v: &mut [f32]) {
    for i in 1..v.len() {
        let x = v[i];
        let mut j = i;
        while j > 0 && v[j - 1] > x {
            v[j] = v[j - 1];
            j -= 1;
        }
        v[j] = x;
    }
}
