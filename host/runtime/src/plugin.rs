//! A loaded plugin and its live instances.

use crate::bindings::aggregator::{Aggregator, AggregatorPre};
use crate::bindings::cleaner::{Cleaner, CleanerPre};
use crate::bindings::scheduler::{Scheduler, SchedulerPre};
use crate::engine::{Runtime, EPOCH_TICK};
use crate::manifest::Manifest;
use crate::store::PluginState;
use crate::{PluginError, Result};
use std::sync::Arc;
use wasmtime::component::InstancePre;
use wasmtime::Store;

/// The world a plugin implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PluginKind {
    /// `world scheduler`.
    Scheduler,
    /// `world cleaner`.
    Cleaner,
    /// `world aggregator`.
    Aggregator,
}

impl PluginKind {
    /// Every kind.
    pub const ALL: [PluginKind; 3] = [Self::Scheduler, Self::Cleaner, Self::Aggregator];

    /// The world's name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Scheduler => "scheduler",
            Self::Cleaner => "cleaner",
            Self::Aggregator => "aggregator",
        }
    }

    /// The exported interface that identifies the world, with the contract version.
    pub fn interface(self) -> &'static str {
        match self {
            Self::Scheduler => concat!("infra:plugins/scheduling@", crate::wit_version!()),
            Self::Cleaner => concat!("infra:plugins/cleaning@", crate::wit_version!()),
            Self::Aggregator => concat!("infra:plugins/aggregation@", crate::wit_version!()),
        }
    }

    /// [`PluginKind::interface`] without the version.
    pub(crate) fn unversioned_interface(self) -> &'static str {
        match self {
            Self::Scheduler => "infra:plugins/scheduling",
            Self::Cleaner => "infra:plugins/cleaning",
            Self::Aggregator => "infra:plugins/aggregation",
        }
    }
}

impl std::fmt::Display for PluginKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for PluginKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| format!("unknown plugin kind `{s}` (scheduler, cleaner, aggregator)"))
    }
}

/// What is known about a loaded plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginMeta {
    /// World.
    pub kind: PluginKind,
    /// Name from `info()`.
    pub name: String,
    /// Version from `info()`.
    pub version: String,
    /// Description from `info()`.
    pub description: String,
    /// sha256 of the component bytes, hex.
    pub sha256: String,
    /// Names the component exports.
    pub exports: Vec<String>,
    /// Size of the component in bytes.
    pub size_bytes: usize,
}

#[derive(Clone)]
pub(crate) enum KindPre {
    Scheduler(SchedulerPre<PluginState>),
    Cleaner(CleanerPre<PluginState>),
    Aggregator(AggregatorPre<PluginState>),
}

pub(crate) enum Bindings {
    Scheduler(Scheduler),
    Cleaner(Cleaner),
    Aggregator(Aggregator),
}

/// A checked, compiled plugin with its configuration. Cheap to clone.
#[derive(Clone)]
pub struct Plugin {
    inner: Arc<PluginInner>,
}

struct PluginInner {
    runtime: Runtime,
    pre: KindPre,
    meta: PluginMeta,
    manifest: Manifest,
    config: Vec<(String, String)>,
    label: Arc<str>,
}

impl Plugin {
    pub(crate) fn new(
        runtime: Runtime,
        pre: InstancePre<PluginState>,
        kind: PluginKind,
        sha256: String,
        exports: Vec<String>,
        size_bytes: usize,
        manifest: Manifest,
    ) -> Result<Self> {
        let missing = |e: wasmtime::Error| PluginError::MissingExport {
            kind: kind.name(),
            detail: format!("{e:#}"),
        };
        let pre = match kind {
            PluginKind::Scheduler => KindPre::Scheduler(SchedulerPre::new(pre).map_err(missing)?),
            PluginKind::Cleaner => KindPre::Cleaner(CleanerPre::new(pre).map_err(missing)?),
            PluginKind::Aggregator => {
                KindPre::Aggregator(AggregatorPre::new(pre).map_err(missing)?)
            }
        };
        let mut meta = PluginMeta {
            kind,
            name: String::new(),
            version: String::new(),
            description: String::new(),
            sha256,
            exports,
            size_bytes,
        };
        let label: Arc<str> = Arc::from(format!("{}@{}", kind, &meta.sha256[..12]));
        let mut plugin = Self {
            inner: Arc::new(PluginInner {
                runtime,
                pre,
                meta: meta.clone(),
                manifest,
                config: Vec::new(),
                label,
            }),
        };
        let info = Instance::new(plugin.clone()).info()?;
        meta.name = info.name;
        meta.version = info.version;
        meta.description = info.description;
        let inner = Arc::get_mut(&mut plugin.inner).expect("no other handle yet");
        inner.label = Arc::from(meta.name.as_str());
        inner.meta = meta;
        Ok(plugin)
    }

    /// Name, version, kind, sha256...
    pub fn meta(&self) -> &PluginMeta {
        &self.inner.meta
    }

    /// Limits and grants.
    pub fn manifest(&self) -> &Manifest {
        &self.inner.manifest
    }

    /// The configuration applied to every new instance.
    pub fn config(&self) -> &[(String, String)] {
        &self.inner.config
    }

    /// Fails unless the plugin implements `kind`.
    pub fn expect_kind(&self, kind: PluginKind) -> Result<()> {
        if self.inner.meta.kind == kind {
            Ok(())
        } else {
            Err(PluginError::WrongKind {
                expected: kind.name(),
                found: self.inner.meta.kind.name(),
            })
        }
    }

    /// The same plugin with another configuration. The configuration is checked at once by
    /// instantiating the plugin and calling `configure`.
    pub fn with_config(&self, config: Vec<(String, String)>) -> Result<Self> {
        let plugin = Self {
            inner: Arc::new(PluginInner {
                runtime: self.inner.runtime.clone(),
                pre: self.inner.pre.clone(),
                meta: self.inner.meta.clone(),
                manifest: self.inner.manifest.clone(),
                config,
                label: self.inner.label.clone(),
            }),
        };
        plugin.instance().ensure_live()?;
        Ok(plugin)
    }

    /// A new instance (instantiated lazily, on its first call).
    pub fn instance(&self) -> Instance {
        Instance::new(self.clone())
    }
}

struct Live {
    store: Store<PluginState>,
    bindings: Bindings,
    instance: wasmtime::component::Instance,
}

/// A live instance of a plugin. Every call gets the plugin's deadline; after a trap the
/// instance is dropped and the next call runs on a fresh one (configured again).
pub struct Instance {
    plugin: Plugin,
    live: Option<Live>,
    replaced: u64,
}

impl Instance {
    fn new(plugin: Plugin) -> Self {
        Self {
            plugin,
            live: None,
            replaced: 0,
        }
    }

    /// The plugin this instance runs.
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// How many times a trapped instance was replaced by a fresh one.
    pub fn replacements(&self) -> u64 {
        self.replaced
    }

    fn instantiate(&self) -> Result<Live> {
        let p = &self.plugin.inner;
        let state = PluginState::new(p.label.clone(), &p.manifest.limits, &p.manifest.grants)?;
        let mut store = Store::new(p.runtime.engine(), state);
        store.limiter(|s| &mut s.limiter);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(deadline_ticks(p.manifest.limits.deadline));
        let made = (|| {
            let instance = match &p.pre {
                KindPre::Scheduler(pre) => pre.instance_pre().instantiate(&mut store)?,
                KindPre::Cleaner(pre) => pre.instance_pre().instantiate(&mut store)?,
                KindPre::Aggregator(pre) => pre.instance_pre().instantiate(&mut store)?,
            };
            let bindings = match &p.pre {
                KindPre::Scheduler(_) => {
                    Bindings::Scheduler(Scheduler::new(&mut store, &instance)?)
                }
                KindPre::Cleaner(_) => Bindings::Cleaner(Cleaner::new(&mut store, &instance)?),
                KindPre::Aggregator(_) => {
                    Bindings::Aggregator(Aggregator::new(&mut store, &instance)?)
                }
            };
            wasmtime::Result::Ok((instance, bindings))
        })();
        let (instance, bindings) = made.map_err(|e| classify(&p.label, &p.manifest, &store, e))?;
        Ok(Live {
            store,
            bindings,
            instance,
        })
    }

    /// Instantiates and configures if there is no live instance.
    pub(crate) fn ensure_live(&mut self) -> Result<()> {
        if self.live.is_some() {
            return Ok(());
        }
        let live = self.instantiate()?;
        self.live = Some(live);
        let config = self.plugin.inner.config.clone();
        let outcome = self.call_raw(|b, s| match b {
            Bindings::Scheduler(x) => x.call_configure(s, &config),
            Bindings::Cleaner(x) => x.call_configure(s, &config),
            Bindings::Aggregator(x) => x.call_configure(s, &config),
        });
        match outcome {
            Ok(Ok(())) => Ok(()),
            Ok(Err(message)) => {
                self.live = None;
                Err(PluginError::Failed {
                    plugin: self.plugin.inner.label.to_string(),
                    message: format!("configure: {message}"),
                })
            }
            Err(e) => Err(e),
        }
    }

    /// Name, version and description (does not need a configuration).
    pub fn info(
        &mut self,
    ) -> Result<crate::bindings::scheduler::infra::plugins::types::PluginInfo> {
        if self.live.is_none() {
            self.live = Some(self.instantiate()?);
        }
        self.call_raw(|b, s| match b {
            Bindings::Scheduler(x) => x.call_info(s),
            Bindings::Cleaner(x) => x.call_info(s),
            Bindings::Aggregator(x) => x.call_info(s),
        })
    }

    /// Runs `f` on a configured live instance with a fresh deadline.
    pub(crate) fn call<R>(
        &mut self,
        f: impl FnOnce(&Bindings, &mut Store<PluginState>) -> wasmtime::Result<R>,
    ) -> Result<R> {
        self.ensure_live()?;
        self.call_raw(f)
    }

    /// Runs `f` returning `result<T, string>`, mapping the plugin's error to `Failed`.
    pub(crate) fn call_fallible<R>(
        &mut self,
        what: &str,
        f: impl FnOnce(&Bindings, &mut Store<PluginState>) -> wasmtime::Result<Result<R, String>>,
    ) -> Result<R> {
        self.call(f)?.map_err(|message| PluginError::Failed {
            plugin: self.plugin.inner.label.to_string(),
            message: format!("{what}: {message}"),
        })
    }

    fn call_raw<R>(
        &mut self,
        f: impl FnOnce(&Bindings, &mut Store<PluginState>) -> wasmtime::Result<R>,
    ) -> Result<R> {
        let p = &self.plugin.inner;
        let live = self.live.as_mut().expect("live instance");
        // Epoch deadlines are absolute: set a fresh one before every call.
        live.store
            .set_epoch_deadline(deadline_ticks(p.manifest.limits.deadline));
        match f(&live.bindings, &mut live.store) {
            Ok(r) => Ok(r),
            Err(e) => {
                let err = classify(&p.label, &p.manifest, &live.store, e);
                tracing::warn!(
                    plugin = &*p.label,
                    "{err}; the next call gets a fresh instance"
                );
                self.live = None;
                self.replaced += 1;
                Err(err)
            }
        }
    }

    /// The function `name` of the exported interface `interface`, from a configured instance.
    pub(crate) fn export_func(
        &mut self,
        interface: &str,
        name: &str,
    ) -> Result<wasmtime::component::Func> {
        self.ensure_live()?;
        let live = self.live.as_mut().expect("live instance");
        let missing = || PluginError::MissingExport {
            kind: self.plugin.inner.meta.kind.name(),
            detail: format!("{interface}#{name}"),
        };
        let iface = live
            .instance
            .get_export_index(&mut live.store, None, interface)
            .ok_or_else(missing)?;
        let func = live
            .instance
            .get_export_index(&mut live.store, Some(&iface), name)
            .ok_or_else(missing)?;
        live.instance
            .get_func(&mut live.store, func)
            .ok_or_else(missing)
    }

    /// The plugin's label for errors.
    pub(crate) fn label(&self) -> String {
        self.plugin.inner.label.to_string()
    }
}

fn deadline_ticks(deadline: std::time::Duration) -> u64 {
    (deadline.as_micros() / EPOCH_TICK.as_micros()).max(1) as u64 + 1
}

fn classify(
    label: &str,
    manifest: &Manifest,
    store: &Store<PluginState>,
    e: wasmtime::Error,
) -> PluginError {
    let plugin = label.to_string();
    if store.data().limiter.hit {
        return PluginError::MemoryLimit {
            plugin,
            limit_bytes: store.data().limiter.max_bytes,
        };
    }
    if matches!(
        e.downcast_ref::<wasmtime::Trap>(),
        Some(wasmtime::Trap::Interrupt)
    ) {
        return PluginError::Deadline {
            plugin,
            deadline: manifest.limits.deadline,
        };
    }
    PluginError::Trap {
        plugin,
        message: format!("{e:#}"),
    }
}
