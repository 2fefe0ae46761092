//! The one wasmtime `Engine` of a process, its epoch ticker, the linker every plugin is
//! instantiated against, and loading (bytes -> checked [`Plugin`]).

use crate::cache::{Cache, CacheSource};
use crate::manifest::{Limits, Manifest};
use crate::plugin::{Plugin, PluginKind};
use crate::store::PluginState;
use crate::{inspect, PluginError, Result};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine};

/// Period of the epoch ticker. Deadlines are enforced to within about one tick.
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Loads and runs plugins. Cheap to clone; all clones share the engine, linker and cache.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) engine: Engine,
    pub(crate) linker: Linker<PluginState>,
    cache: Cache,
    pub(crate) default_limits: Limits,
    stop_ticker: Arc<AtomicBool>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

/// Configures a [`Runtime`].
#[derive(Default)]
pub struct RuntimeBuilder {
    cache_dir: Option<PathBuf>,
    no_disk_cache: bool,
    limits: Option<Limits>,
}

impl RuntimeBuilder {
    /// Directory of the compiled-code cache (default: `$INFRA_CACHE_DIR`, else
    /// `$XDG_CACHE_HOME/infra/components`, else `~/.cache/infra/components`).
    pub fn cache_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cache_dir = Some(dir.into());
        self
    }

    /// Keeps compiled code in memory only.
    pub fn no_disk_cache(mut self) -> Self {
        self.no_disk_cache = true;
        self
    }

    /// Limits for plugins whose manifest sets none.
    pub fn default_limits(mut self, limits: Limits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// Creates the engine and starts the epoch ticker.
    pub fn build(self) -> Result<Runtime> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        config.cranelift_opt_level(wasmtime::OptLevel::Speed);
        config.wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Disable);
        if std::env::var_os("INFRA_WASM_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let engine = Engine::new(&config).map_err(engine_err)?;

        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(engine_err)?;
        crate::bindings::log::add_to_linker::<PluginState, HasSelf<PluginState>>(
            &mut linker,
            |s| s,
        )
        .map_err(engine_err)?;

        let dir = if self.no_disk_cache {
            None
        } else {
            self.cache_dir.or_else(default_cache_dir)
        };
        let stop = Arc::new(AtomicBool::new(false));
        start_ticker(&engine, stop.clone());
        Ok(Runtime {
            inner: Arc::new(Inner {
                cache: Cache::new(&engine, dir),
                engine,
                linker,
                default_limits: self.limits.unwrap_or_default(),
                stop_ticker: stop,
            }),
        })
    }
}

fn default_cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("INFRA_CACHE_DIR") {
        return Some(PathBuf::from(d));
    }
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("infra").join("components"))
}

/// One thread per engine advances the epoch; it ends when the engine is dropped.
fn start_ticker(engine: &Engine, stop: Arc<AtomicBool>) {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("infra-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                match weak.upgrade() {
                    Some(engine) => engine.increment_epoch(),
                    None => break,
                }
            }
        })
        .expect("spawn the epoch ticker thread");
}

pub(crate) fn engine_err(e: impl std::fmt::Display) -> PluginError {
    PluginError::Engine(e.to_string())
}

/// sha256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl Runtime {
    /// A runtime with the default settings.
    pub fn new() -> Result<Self> {
        Self::builder().build()
    }

    /// Starts configuring a runtime.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder::default()
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Limits applied when a manifest sets none.
    pub fn default_limits(&self) -> Limits {
        self.inner.default_limits
    }

    /// Loads a component from memory with the default manifest (no grants).
    pub fn load(&self, bytes: &[u8]) -> Result<Plugin> {
        let manifest = Manifest {
            limits: self.inner.default_limits,
            ..Manifest::default()
        };
        self.load_with(bytes, manifest)
    }

    /// Loads `path` and the manifest next to it (`x.wasm` -> `x.toml`), if any.
    pub fn load_file(&self, path: &Path) -> Result<Plugin> {
        let bytes = std::fs::read(path).map_err(|cause| PluginError::Io {
            path: path.display().to_string(),
            cause,
        })?;
        let manifest = Manifest::for_component(path)?;
        self.load_with(&bytes, manifest)
    }

    /// Loads a component with explicit limits and grants: checks the bytes, compiles (or takes
    /// the cached code), detects the world, links, and asks the plugin for its info.
    pub fn load_with(&self, bytes: &[u8], manifest: Manifest) -> Result<Plugin> {
        self.load_reporting(bytes, manifest).map(|(p, _)| p)
    }

    /// Like [`Runtime::load_with`], also telling where the compiled code came from.
    pub fn load_reporting(
        &self,
        bytes: &[u8],
        manifest: Manifest,
    ) -> Result<(Plugin, CacheSource)> {
        inspect::check_header(bytes)?;
        let sha = sha256_hex(bytes);
        let (component, source) = self
            .inner
            .cache
            .get(&self.inner.engine, bytes, &sha)
            .map_err(|e| inspect::compile_error(e, bytes.len()))?;
        let (kind, exports) = inspect::detect_kind(&self.inner.engine, &component)?;
        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(|e| PluginError::UnsupportedImport(format!("{e:#}")))?;
        let plugin = Plugin::new(self.clone(), pre, kind, sha, exports, bytes.len(), manifest)?;
        Ok((plugin, source))
    }

    /// Loads and checks that the component is of `kind`.
    pub fn load_kind(&self, bytes: &[u8], kind: PluginKind) -> Result<Plugin> {
        let p = self.load(bytes)?;
        p.expect_kind(kind)?;
        Ok(p)
    }
}
