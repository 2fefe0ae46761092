//! The sandboxed plugin runtime of infra.
//!
//! Every policy (scheduler, cleaning step, aggregation strategy) is a WebAssembly component
//! targeting a world of `wit/plugins.wit`. This crate loads, checks, limits and calls them.
//!
//! Layout:
//! - [`Runtime`] (`engine.rs`): one wasmtime `Engine` with an epoch ticker thread, the linker
//!   (WASI p2 + the `log` import) and the compiled-code cache (`cache.rs`);
//! - `inspect.rs`: byte-level checks and world detection, so a bad file gets an error that
//!   names what is wrong ([`PluginError`], `error.rs`);
//! - [`Manifest`] (`manifest.rs`): per-plugin limits and capability grants (none by default);
//! - `store.rs`: the store data, memory limiter and guest stdout/stderr -> `tracing`;
//! - [`Plugin`] (`plugin.rs`): a loaded component and its `InstancePre`; [`Instance`], a live
//!   instance with a deadline on every call that is replaced by a fresh one after a trap;
//! - typed calls per world: [`scheduler`] (its task list lowered into the guest by
//!   `scheduler/lower.rs`, not field by field), [`cleaner`], [`aggregator`] (with the
//!   host-side weighted sum an aggregator may ask for);
//! - [`Registry`] (`registry.rs`): the active plugin per kind and scope, atomic hot swap with
//!   rollback.
//!
//! Profiling: with `INFRA_WASM_PERFMAP` set, the engine writes `/tmp/perf-PID.map`, so `perf
//! report` names guest functions (`wasm[0]::function[N]`) instead of bare JIT addresses.

/// The version of the WIT package, as a literal for `concat!` (the `with` mappings in
/// `bindings.rs` must spell it out too; bindgen fails the build if they disagree with
/// `wit/plugins.wit`).
macro_rules! wit_version {
    () => {
        "0.4.0"
    };
}
pub(crate) use wit_version;

pub mod aggregator;
mod bindings;
mod cache;
pub mod cleaner;
mod engine;
mod error;
mod inspect;
mod manifest;
mod plugin;
mod registry;
pub mod scheduler;
mod store;

pub use cache::CacheSource;
pub use engine::{sha256_hex, Runtime, RuntimeBuilder, EPOCH_TICK};
pub use error::PluginError;
pub use manifest::{Grants, Limits, Manifest, PreopenGrant};
pub use plugin::{Instance, Plugin, PluginKind, PluginMeta};
pub use registry::{Registry, Scope, SwapRecord};

/// Result type of this crate.
pub type Result<T, E = PluginError> = std::result::Result<T, E>;

/// Version of the WIT package the host implements.
pub const WIT_VERSION: &str = wit_version!();
