//! Checkpoints: safetensors files holding the model's variables under their names, with
//! metadata (job, round, accuracy, sha256 of every plugin used). Saving writes a temporary
//! file, flushes it and renames it (`durable`), so a crash never leaves a half-written
//! checkpoint.

use crate::model::Model;
use crate::task::{params_from_bytes, params_to_bytes};
use crate::TrainError;
use safetensors::tensor::{Dtype, TensorView};
use std::collections::HashMap;
use std::path::Path;

/// What a checkpoint says about itself.
pub type Metadata = HashMap<String, String>;

/// Writes `model`'s variables and `meta` to `path`.
pub fn save(model: &Model, meta: &Metadata, path: &Path) -> Result<(), TrainError> {
    let flat = model.flat();
    let layout = model.layout();
    let mut bytes: Vec<(String, Vec<usize>, Vec<u8>)> = Vec::new();
    let mut at = 0;
    for (name, shape) in layout {
        let n: usize = shape.iter().product::<i64>() as usize;
        let data = params_to_bytes(&flat[at..at + n]);
        bytes.push((name, shape.iter().map(|&d| d as usize).collect(), data));
        at += n;
    }
    let views: Vec<(String, TensorView<'_>)> = bytes
        .iter()
        .map(|(n, s, d)| {
            Ok((
                n.clone(),
                TensorView::new(Dtype::F32, s.clone(), d)
                    .map_err(|e| TrainError::Model(e.to_string()))?,
            ))
        })
        .collect::<Result<_, TrainError>>()?;
    let io = |e: std::io::Error| TrainError::Model(format!("{}: {e}", path.display()));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let tmp = path.with_extension("safetensors.tmp");
    safetensors::serialize_to_file(views, &Some(meta.clone()), &tmp)
        .map_err(|e| TrainError::Model(e.to_string()))?;
    crate::durable::commit(&tmp, path).map_err(io)
}

/// Loads the parameters of `path` into `model` (checking names and shapes) and returns the
/// metadata.
pub fn load(model: &mut Model, path: &Path) -> Result<Metadata, TrainError> {
    let err = |m: String| TrainError::Model(format!("{}: {m}", path.display()));
    let data = std::fs::read(path).map_err(|e| err(e.to_string()))?;
    let (_, header) =
        safetensors::SafeTensors::read_metadata(&data).map_err(|e| err(e.to_string()))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let st = safetensors::SafeTensors::deserialize(&data).map_err(|e| err(e.to_string()))?;
    let mut flat = Vec::with_capacity(model.num_params());
    for (name, shape) in model.layout() {
        let t = st
            .tensor(&name)
            .map_err(|_| err(format!("no tensor `{name}`")))?;
        let want: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
        if t.dtype() != Dtype::F32 || t.shape() != want.as_slice() {
            return Err(err(format!(
                "`{name}` is {:?} {:?}, the model needs F32 {want:?}",
                t.dtype(),
                t.shape()
            )));
        }
        flat.extend(params_from_bytes(t.data())?);
    }
    model.load_flat(&flat)?;
    Ok(meta)
}
