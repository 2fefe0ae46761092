//! Checks that name what is wrong with a file before and after compiling it.

use crate::plugin::PluginKind;
use crate::{PluginError, Result};
use wasmtime::component::Component;
use wasmtime::Engine;

const MAGIC: &[u8; 4] = b"\0asm";
/// Version + layer field of a core module (version 1, layer 0).
const CORE_MODULE: [u8; 4] = [1, 0, 0, 0];
/// Layer 1 marks a component.
const COMPONENT_LAYER: [u8; 2] = [1, 0];

/// Rejects non-Wasm and core modules from the first 8 bytes.
pub(crate) fn check_header(bytes: &[u8]) -> Result<()> {
    if bytes.len() < 8 {
        if bytes.len() >= 4 && &bytes[..4] == MAGIC || MAGIC.starts_with(bytes) && !bytes.is_empty()
        {
            return Err(PluginError::Truncated(format!(
                "{} bytes, shorter than the 8-byte header",
                bytes.len()
            )));
        }
        return Err(PluginError::NotWasm);
    }
    if &bytes[..4] != MAGIC {
        return Err(PluginError::NotWasm);
    }
    if bytes[4..8] == CORE_MODULE {
        return Err(PluginError::CoreModule);
    }
    if bytes[6..8] != COMPONENT_LAYER {
        return Err(PluginError::Invalid(format!(
            "unknown Wasm version/layer {:02x?}",
            &bytes[4..8]
        )));
    }
    Ok(())
}

/// Maps a compile failure of `len` bytes to `Truncated` or `Invalid`: a section that runs
/// past the end of the file is a truncation.
pub(crate) fn compile_error(e: wasmtime::Error, len: usize) -> PluginError {
    let msg = format!("{e:#}");
    if msg.contains("unexpected end")
        || msg.contains("end of file")
        || msg.contains("unexpected EOF")
        || msg.contains(&format!("out of bounds (bound = {len})"))
    {
        PluginError::Truncated(msg)
    } else {
        PluginError::Invalid(msg)
    }
}

/// Whether `export` is one of the world interfaces (`infra:plugins/scheduling@...` and so on)
/// at a version other than this host's.
fn other_contract_version(export: &str) -> bool {
    PluginKind::ALL.into_iter().any(|k| {
        export
            .strip_prefix(k.unversioned_interface())
            .and_then(|rest| rest.strip_prefix('@'))
            .is_some_and(|v| v != crate::WIT_VERSION)
    })
}

/// The world a component implements, from the interfaces it exports.
pub(crate) fn detect_kind(
    engine: &Engine,
    component: &Component,
) -> Result<(PluginKind, Vec<String>)> {
    let ty = component.component_type();
    let exports: Vec<String> = ty
        .exports(engine)
        .map(|(name, _)| name.to_string())
        .collect();
    let found: Vec<PluginKind> = PluginKind::ALL
        .into_iter()
        .filter(|k| exports.iter().any(|e| e == k.interface()))
        .collect();
    match found.as_slice() {
        [one] => Ok((*one, exports)),
        [] => {
            let other: Vec<&str> = exports
                .iter()
                .map(String::as_str)
                .filter(|e| other_contract_version(e))
                .collect();
            Err(if !other.is_empty() {
                PluginError::OtherContractVersion {
                    found: other.join(", "),
                    supported: crate::WIT_VERSION,
                }
            } else if exports.is_empty() {
                PluginError::UnknownWorld("nothing".into())
            } else {
                PluginError::UnknownWorld(exports.join(", "))
            })
        }
        many => Err(PluginError::Invalid(format!(
            "exports the interfaces of several worlds ({}); a plugin implements exactly one",
            many.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
        ))),
    }
}
