//! Weights and updates on the wire, as the job's `cluster.compression` says:
//! - `none`: little-endian f32 parameters both ways;
//! - `f16`: the weights as little-endian f16, and each update as the f16 difference between the
//!   trained parameters and the weights the worker received. The coordinator adds that
//!   difference to its own f32 weights, so the global model keeps full precision and only the
//!   round's change is rounded. Half the bytes each way.

use crate::ClusterError;
use half::f16;
use half::slice::HalfFloatSliceExt;
use infra_train::job::Compression;
use infra_train::task::{params_from_bytes, params_to_bytes};

/// The round's weights as they go to a worker.
pub fn encode_weights(global: &[f32], c: Compression) -> Result<Vec<u8>, ClusterError> {
    match c {
        Compression::None => Ok(params_to_bytes(global)),
        Compression::F16 => to_f16_bytes(global.len(), "weight", |start, out| {
            out.copy_from_slice(&global[start..start + out.len()])
        }),
    }
}

/// The weights a worker received, as f32.
pub fn decode_weights(bytes: &[u8], c: Compression) -> Result<Vec<f32>, ClusterError> {
    match c {
        Compression::None => Ok(params_from_bytes(bytes)?),
        Compression::F16 => from_f16_bytes(bytes, None),
    }
}

/// A worker's update as it goes back: the trained parameters, or (f16) their difference from
/// `received`, the weights it started from.
pub fn encode_update(
    trained: &[f32],
    received: &[f32],
    c: Compression,
) -> Result<Vec<u8>, ClusterError> {
    match c {
        Compression::None => Ok(params_to_bytes(trained)),
        Compression::F16 => {
            if trained.len() != received.len() {
                return Err(ClusterError::Job(format!(
                    "trained {} parameters from weights of {}",
                    trained.len(),
                    received.len()
                )));
            }
            to_f16_bytes(trained.len(), "update delta", |start, out| {
                let end = start + out.len();
                for ((o, t), r) in out
                    .iter_mut()
                    .zip(&trained[start..end])
                    .zip(&received[start..end])
                {
                    *o = t - r;
                }
            })
        }
    }
}

/// An update from a worker as full f32 parameters for the aggregator (`global` is the
/// coordinator's copy of the weights the worker was sent).
pub fn decode_update(
    bytes: &[u8],
    global: &[f32],
    c: Compression,
) -> Result<Vec<f32>, ClusterError> {
    let width = match c {
        Compression::None => 4,
        Compression::F16 => 2,
    };
    if bytes.len() != width * global.len() {
        return Err(ClusterError::Protocol(format!(
            "an update of {} parameters for a model of {} ({} bytes)",
            bytes.len() / width,
            global.len(),
            bytes.len()
        )));
    }
    match c {
        Compression::None => Ok(params_from_bytes(bytes)?),
        Compression::F16 => from_f16_bytes(bytes, Some(global)),
    }
}

/// Values converted per step: small enough to stay in L1, large enough for the vector units.
const BLOCK: usize = 4096;

/// `n` values as little-endian f16, a block at a time: `fill(start, out)` writes values
/// `start..start + out.len()` into `out`. A finite value beyond f16's range is an error that
/// names it (`what` and its index).
fn to_f16_bytes(
    n: usize,
    what: &str,
    fill: impl Fn(usize, &mut [f32]),
) -> Result<Vec<u8>, ClusterError> {
    let mut out = vec![0u8; n * 2];
    let (mut values, mut half) = ([0f32; BLOCK], [f16::ZERO; BLOCK]);
    for (b, bytes) in out.chunks_mut(BLOCK * 2).enumerate() {
        let (values, half) = (&mut values[..bytes.len() / 2], &mut half[..bytes.len() / 2]);
        fill(b * BLOCK, values);
        half.convert_from_f32_slice(values);
        // On the bits, without branches, so the scan vectorises; the exact check only runs
        // when there is an infinity.
        let infinite = half
            .iter()
            .fold(false, |any, h| any | (h.to_bits() & 0x7fff == 0x7c00));
        if infinite {
            if let Some(i) = half
                .iter()
                .zip(values.iter())
                .position(|(h, v)| h.is_infinite() && v.is_finite())
            {
                return Err(ClusterError::Job(format!(
                    "{what} {} = {} is outside f16's range (±65504); use `cluster.compression = \"none\"`",
                    b * BLOCK + i,
                    values[i]
                )));
            }
        }
        for (o, h) in bytes.chunks_exact_mut(2).zip(half.iter()) {
            o.copy_from_slice(&h.to_le_bytes());
        }
    }
    Ok(out)
}

/// Little-endian f16 values as f32, plus `base` (of the same length) when given.
fn from_f16_bytes(bytes: &[u8], base: Option<&[f32]>) -> Result<Vec<f32>, ClusterError> {
    if !bytes.len().is_multiple_of(2) {
        return Err(ClusterError::Protocol(format!(
            "{} bytes of f16 parameters are not a whole number of values",
            bytes.len()
        )));
    }
    let mut out = vec![0f32; bytes.len() / 2];
    let mut half = [f16::ZERO; BLOCK];
    for (b, (src, dst)) in bytes
        .chunks(BLOCK * 2)
        .zip(out.chunks_mut(BLOCK))
        .enumerate()
    {
        let half = &mut half[..dst.len()];
        for (h, b) in half.iter_mut().zip(src.chunks_exact(2)) {
            *h = f16::from_le_bytes([b[0], b[1]]);
        }
        half.convert_to_f32_slice(dst);
        if let Some(base) = base {
            for (d, g) in dst.iter_mut().zip(&base[b * BLOCK..]) {
                *d += g;
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_halves_the_bytes_and_keeps_the_global_model_in_f32() {
        let global: Vec<f32> = (0..1000).map(|i| (i as f32 * 0.37).sin() * 3.0).collect();
        let w = encode_weights(&global, Compression::F16).unwrap();
        assert_eq!(w.len(), 2 * global.len());
        let received = decode_weights(&w, Compression::F16).unwrap();
        assert!(received
            .iter()
            .zip(&global)
            .all(|(r, g)| (r - g).abs() <= g.abs() / 1024.0 + 1e-7));
        // A small step from the received weights comes back as global + step (to f16's
        // precision of the step, not of the weights).
        let trained: Vec<f32> = received.iter().map(|r| r + 1e-3).collect();
        let u = encode_update(&trained, &received, Compression::F16).unwrap();
        assert_eq!(u.len(), 2 * global.len());
        let back = decode_update(&u, &global, Compression::F16).unwrap();
        assert!(back
            .iter()
            .zip(&global)
            .all(|(b, g)| (b - g - 1e-3).abs() < 1e-6));
    }

    #[test]
    fn none_is_exact() {
        let global = vec![1.0f32, -2.5, 3.25e-9, 7e30];
        let w = encode_weights(&global, Compression::None).unwrap();
        assert_eq!(decode_weights(&w, Compression::None).unwrap(), global);
        let u = encode_update(&global, &global, Compression::None).unwrap();
        assert_eq!(
            decode_update(&u, &global, Compression::None).unwrap(),
            global
        );
    }

    #[test]
    fn out_of_range_values_and_wrong_lengths_are_named() {
        let e = encode_weights(&[1.0, 1e6], Compression::F16).unwrap_err();
        assert!(e.to_string().contains("weight 1 = 1000000"), "{e}");
        let e = decode_weights(&[0, 0, 0], Compression::F16).unwrap_err();
        assert!(e.to_string().contains("3 bytes"), "{e}");
        let e = decode_update(&[0, 0], &[1.0, 2.0], Compression::F16).unwrap_err();
        assert!(
            e.to_string().contains("1 parameters for a model of 2"),
            "{e}"
        );
    }
}
