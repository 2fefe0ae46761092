//! infra's built-in plugins, embedded in the host binary so a node needs no plugin files.
//!
//! `build.rs` compiles the guest workspace in `plugins/` (one component per directory of
//! `plugins/builtin/`) and generates the [`BUILTINS`] table.

use infra_runtime::{Plugin, PluginKind, Runtime};

/// One embedded component.
#[derive(Debug)]
pub struct Builtin {
    /// Name (the directory under `plugins/builtin/`, and what `info()` answers).
    pub name: &'static str,
    /// World: `scheduler`, `cleaner` or `aggregator`.
    pub world: &'static str,
    /// The component.
    pub bytes: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/builtins.rs"));

/// The built-in called `name`.
pub fn find(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

/// The names of the built-ins of `kind`.
pub fn names(kind: PluginKind) -> Vec<&'static str> {
    BUILTINS
        .iter()
        .filter(|b| b.world == kind.name())
        .map(|b| b.name)
        .collect()
}

/// Loads the built-in `name`, checking that it is of `kind`.
pub fn load(runtime: &Runtime, name: &str, kind: PluginKind) -> infra_runtime::Result<Plugin> {
    let b = find(name)
        .filter(|b| b.world == kind.name())
        .ok_or_else(|| infra_runtime::PluginError::UnknownBuiltin {
            kind: kind.name(),
            name: name.to_string(),
            available: names(kind).join(", "),
        })?;
    runtime.load_kind(b.bytes, kind)
}

/// Path of a component built from the guest workspace (`plugins/`), by crate name; test
/// components live there too.
pub fn guest_artifact(crate_name: &str) -> std::path::PathBuf {
    std::path::Path::new(GUEST_ARTIFACTS).join(format!("{}.wasm", crate_name.replace('-', "_")))
}

pub mod sample;
