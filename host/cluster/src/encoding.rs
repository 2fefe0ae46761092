//! Weights and updates on the wire, as the job's `cluster.compression` says:
//! - `none`: little-endian f32 parameters both ways;
//! - `f16`: the weights as little-endian f16, and each update as the f16 difference between the
//!   trained parameters and the weights the worker received. The coordinator adds that
//!   difference to its own f32 weights, so the global model keeps full precision and only the
//!   round's change is rounded. Half the bytes each way.
//!
//! With `none` on a little-endian host no parameter is copied to encode or decode: the f32
//! vector is sent as its own bytes ([`Bytes::from_owner`]), and bytes that arrive 4-aligned
//! (allocators align large buffers) are read in place ([`Params::from_le_bytes`]). A 1B-parameter
//! model then costs no extra 4 GB on either side of a transfer.

use crate::ClusterError;
use bytes::Bytes;
use half::f16;
use half::slice::HalfFloatSliceExt;
use infra_train::job::Compression;
use infra_train::task::{params_from_bytes, params_to_bytes};
use std::sync::Arc;

/// f32 parameters: a vector, or little-endian f32 bytes viewed in place.
#[derive(Debug, Clone)]
pub struct Params(Repr);

#[derive(Debug, Clone)]
enum Repr {
    /// Decoded or computed here.
    Vec(Arc<Vec<f32>>),
    /// Bytes as they arrived; only made by [`Params::from_le_bytes`], which checks that they
    /// can be read as f32 here (little-endian host, 4-aligned, a whole number of values).
    Wire(Bytes),
}

impl Params {
    /// Little-endian f32 `bytes` as parameters: viewed in place where they can be, decoded
    /// into a vector otherwise.
    pub fn from_le_bytes(bytes: Bytes) -> Result<Self, ClusterError> {
        if cfg!(target_endian = "little") && bytemuck::try_cast_slice::<u8, f32>(&bytes).is_ok() {
            return Ok(Self(Repr::Wire(bytes)));
        }
        Ok(Arc::new(params_from_bytes(&bytes)?).into())
    }

    /// Whether these are the received bytes themselves, read in place (no copy was made).
    pub fn is_wire_view(&self) -> bool {
        matches!(self.0, Repr::Wire(_))
    }
}

impl From<Arc<Vec<f32>>> for Params {
    fn from(v: Arc<Vec<f32>>) -> Self {
        Self(Repr::Vec(v))
    }
}

impl From<Vec<f32>> for Params {
    fn from(v: Vec<f32>) -> Self {
        Arc::new(v).into()
    }
}

impl std::ops::Deref for Params {
    type Target = [f32];

    fn deref(&self) -> &[f32] {
        match &self.0 {
            Repr::Vec(v) => v,
            // Checked when made (the only constructor of `Wire`), and `Bytes` never moves its
            // data.
            Repr::Wire(b) => bytemuck::cast_slice(b),
        }
    }
}

/// `params` as little-endian f32 bytes: the vector's own memory on a little-endian host.
pub fn le_bytes(params: Arc<Vec<f32>>) -> Bytes {
    if cfg!(target_endian = "little") {
        Bytes::from_owner(F32Bytes(params))
    } else {
        params_to_bytes(&params).into()
    }
}

/// An f32 vector as the owner of a [`Bytes`] view of its memory.
struct F32Bytes(Arc<Vec<f32>>);

impl AsRef<[u8]> for F32Bytes {
    fn as_ref(&self) -> &[u8] {
        bytemuck::cast_slice(&self.0)
    }
}

/// The round's weights as they go to a worker.
pub fn encode_weights(global: &Arc<Vec<f32>>, c: Compression) -> Result<Bytes, ClusterError> {
    match c {
        Compression::None => Ok(le_bytes(global.clone())),
        Compression::F16 => Ok(to_f16_bytes(global.len(), "weight", |start, out| {
            out.copy_from_slice(&global[start..start + out.len()])
        })?
        .into()),
    }
}

/// The weights a worker received, as f32.
pub fn decode_weights(bytes: Bytes, c: Compression) -> Result<Params, ClusterError> {
    match c {
        Compression::None => Params::from_le_bytes(bytes),
        Compression::F16 => Ok(from_f16_bytes(&bytes, None)?.into()),
    }
}

/// A worker's update as it goes back: the trained parameters, or (f16) their difference from
/// `received`, the weights it started from.
pub fn encode_update(
    trained: Vec<f32>,
    received: &[f32],
    c: Compression,
) -> Result<Bytes, ClusterError> {
    match c {
        Compression::None => Ok(le_bytes(Arc::new(trained))),
        Compression::F16 => {
            if trained.len() != received.len() {
                return Err(ClusterError::BadJob(format!(
                    "trained {} parameters from weights of {}",
                    trained.len(),
                    received.len()
                )));
            }
            Ok(to_f16_bytes(trained.len(), "update delta", |start, out| {
                let end = start + out.len();
                for ((o, t), r) in out
                    .iter_mut()
                    .zip(&trained[start..end])
                    .zip(&received[start..end])
                {
                    *o = t - r;
                }
            })?
            .into())
        }
    }
}

/// An update from a worker as full f32 parameters for the aggregator (`global` is the
/// coordinator's copy of the weights the worker was sent).
pub fn decode_update(bytes: Bytes, global: &[f32], c: Compression) -> Result<Params, ClusterError> {
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
        Compression::None => Params::from_le_bytes(bytes),
        Compression::F16 => Ok(from_f16_bytes(&bytes, Some(global))?.into()),
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
                return Err(ClusterError::BadJob(format!(
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
        let w = encode_weights(&Arc::new(global.clone()), Compression::F16).unwrap();
        assert_eq!(w.len(), 2 * global.len());
        let received = decode_weights(w, Compression::F16).unwrap();
        assert!(received
            .iter()
            .zip(&global)
            .all(|(r, g)| (r - g).abs() <= g.abs() / 1024.0 + 1e-7));
        // A small step from the received weights comes back as global + step (to f16's
        // precision of the step, not of the weights).
        let trained: Vec<f32> = received.iter().map(|r| r + 1e-3).collect();
        let u = encode_update(trained, &received, Compression::F16).unwrap();
        assert_eq!(u.len(), 2 * global.len());
        let back = decode_update(u, &global, Compression::F16).unwrap();
        assert!(back
            .iter()
            .zip(&global)
            .all(|(b, g)| (b - g - 1e-3).abs() < 1e-6));
    }

    #[test]
    fn none_is_exact_and_copies_nothing_on_a_little_endian_host() {
        let global = Arc::new(vec![1.0f32, -2.5, 3.25e-9, 7e30, f32::MIN_POSITIVE, -0.0]);
        let w = encode_weights(&global, Compression::None).unwrap();
        let expected: Vec<u8> = global.iter().flat_map(|v| v.to_le_bytes()).collect();
        assert_eq!(w[..], expected[..], "the wire format is little-endian f32");
        let received = decode_weights(w.clone(), Compression::None).unwrap();
        assert_eq!(received[..], global[..]);
        let u = encode_update(received.to_vec(), &received, Compression::None).unwrap();
        let back = decode_update(u, &global, Compression::None).unwrap();
        assert_eq!(
            back.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
            global.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
        );
        if cfg!(target_endian = "little") {
            assert_eq!(w.as_ptr(), global.as_ptr().cast(), "encoding copied");
            assert!(received.is_wire_view(), "decoding copied");
            assert_eq!(received.as_ptr(), global.as_ptr(), "decoding copied");
        }
    }

    #[test]
    fn bytes_that_cannot_be_viewed_in_place_are_decoded() {
        let values = [3.5f32, -1.0, 2.0];
        let mut raw = vec![0u8];
        raw.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        // One byte in: the f32 values are not 4-aligned.
        let p = Params::from_le_bytes(Bytes::from(raw).slice(1..)).unwrap();
        assert!(!p.is_wire_view());
        assert_eq!(p[..], values);
    }

    #[test]
    fn out_of_range_values_and_wrong_lengths_are_named() {
        let e = encode_weights(&Arc::new(vec![1.0, 1e6]), Compression::F16).unwrap_err();
        assert!(e.to_string().contains("weight 1 = 1000000"), "{e}");
        let e = decode_weights(Bytes::from_static(&[0, 0, 0]), Compression::F16).unwrap_err();
        assert!(e.to_string().contains("3 bytes"), "{e}");
        let e = decode_weights(Bytes::from_static(&[0, 0, 0]), Compression::None).unwrap_err();
        assert!(e.to_string().contains("3 parameter bytes"), "{e}");
        let e =
            decode_update(Bytes::from_static(&[0, 0]), &[1.0, 2.0], Compression::F16).unwrap_err();
        assert!(
            e.to_string().contains("1 parameters for a model of 2"),
            "{e}"
        );
    }
}
