//! Typed errors: one variant per cause a caller may want to match.

use std::time::Duration;

/// Why a plugin could not be loaded or called.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    /// The bytes do not start with the Wasm magic number.
    #[error("not a WebAssembly file (no \\0asm header)")]
    NotWasm,
    /// A core Wasm module, not a component.
    #[error("a core WebAssembly module, not a component: build for wasm32-wasip2 or wrap it with `wasm-tools component new`")]
    CoreModule,
    /// The binary ends before its sections do.
    #[error("truncated component: {0}")]
    Truncated(String),
    /// The binary does not decode or validate.
    #[error("invalid component: {0}")]
    Invalid(String),
    /// The component exports none of the infra worlds.
    #[error(
        "exports none of the infra plugin worlds (scheduler, cleaner, aggregator); it exports: {0}"
    )]
    UnknownWorld(String),
    /// The component exports an infra interface of another contract version.
    #[error(
        "built against another version of the plugin contract: it exports {found}, this host \
         speaks infra:plugins@{supported}; rebuild the plugin against wit/plugins.wit"
    )]
    OtherContractVersion {
        /// The versioned interface names it exports, e.g. `infra:plugins/scheduling@0.1.0`.
        found: String,
        /// The contract version of this host.
        supported: &'static str,
    },
    /// The component targets another world than the one asked for.
    #[error("wrong plugin kind: expected {expected}, found {found}")]
    WrongKind {
        /// Kind the caller asked for.
        expected: &'static str,
        /// Kind the component implements.
        found: &'static str,
    },
    /// A function or interface of the world is not exported.
    #[error("{kind} plugin is missing an export: {detail}")]
    MissingExport {
        /// Kind of plugin.
        kind: &'static str,
        /// What is missing, as wasmtime reports it.
        detail: String,
    },
    /// The component imports something the host does not provide (or the manifest did not
    /// grant).
    #[error("imports what the host does not provide: {0}")]
    UnsupportedImport(String),
    /// The manifest is malformed or grants something that cannot be set up.
    #[error("manifest: {0}")]
    Manifest(String),
    /// The plugin ran past its deadline and was stopped.
    #[error("plugin `{plugin}` exceeded its deadline of {deadline:?} and was stopped")]
    Deadline {
        /// Plugin name.
        plugin: String,
        /// The deadline in force.
        deadline: Duration,
    },
    /// The plugin tried to grow its memory past the cap.
    #[error("plugin `{plugin}` hit its memory limit of {limit_bytes} bytes and was stopped")]
    MemoryLimit {
        /// Plugin name.
        plugin: String,
        /// The cap in bytes.
        limit_bytes: usize,
    },
    /// The plugin trapped (panic, unreachable, out-of-bounds...).
    #[error("plugin `{plugin}` trapped: {message}")]
    Trap {
        /// Plugin name.
        plugin: String,
        /// The trap and its context.
        message: String,
    },
    /// The plugin returned an error value.
    #[error("plugin `{plugin}` failed: {message}")]
    Failed {
        /// Plugin name.
        plugin: String,
        /// The plugin's own error text.
        message: String,
    },
    /// The plugin returned something that breaks the contract (e.g. an unknown node id).
    #[error("plugin `{plugin}` broke its contract: {message}")]
    Contract {
        /// Plugin name.
        plugin: String,
        /// What was wrong.
        message: String,
    },
    /// Reading a file failed.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: String,
        /// The cause, shown in the message (not also as the error's source, which would
        /// print it twice in a cause chain).
        cause: std::io::Error,
    },
    /// Nothing is registered for the kind and scope asked for.
    #[error("no active {kind} plugin for {scope}")]
    NotRegistered {
        /// Kind.
        kind: &'static str,
        /// Scope.
        scope: String,
    },
    /// No built-in plugin of that name and kind.
    #[error("no built-in {kind} called `{name}` (built-ins: {available})")]
    UnknownBuiltin {
        /// Kind asked for.
        kind: &'static str,
        /// Name asked for.
        name: String,
        /// The built-ins of that kind.
        available: String,
    },
    /// A rollback with nothing to roll back to.
    #[error("no previous {kind} plugin to roll back to in {scope}")]
    NothingToRollBack {
        /// Kind.
        kind: &'static str,
        /// Scope.
        scope: String,
    },
    /// Any other engine failure.
    #[error("{0}")]
    Engine(String),
}
