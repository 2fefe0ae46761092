//! Plugins on a cluster node: the embedded built-ins, plugins installed by upload (kept in
//! `<data>/plugins/<sha256>.wasm` and reloaded at start), and the cluster-wide active plugin of
//! each kind that a swap sets (an [`infra_runtime::Registry`] in global scope, whose history
//! records every swap with both sha256). Running jobs learn of a swap through a watch channel
//! per kind ([`ClusterPlugins::subscribe`]).
//!
//! On a closed node (one with trusted operator keys) every plugin but the built-ins needs a
//! [`PluginSignature`] by a trusted key over its sha256, kind, name and version: at upload,
//! when fetched from a peer, and again when reloaded from disk. The signature is kept beside
//! the component (`<sha256>.wasm.sig`) and handed to peers with it.

use crate::blobs::{BlobId, BlobStore};
use crate::transfer::{self, Links};
use crate::ClusterError;
use infra_net::{Client, PeerId};
use infra_runtime::{Plugin, PluginKind, PluginMeta, Registry, Runtime};
use infra_train::job::PluginRef;
use infra_trust::{PluginSignature, SwapOrder, Trusted};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;
use tokio::sync::watch;

/// Prefix of a job's plugin reference that names an installed plugin by content.
pub const SHA_PREFIX: &str = "sha256:";

/// sha256 of every built-in, computed once.
fn builtin_shas() -> &'static [(String, &'static infra_builtins::Builtin)] {
    static SHAS: std::sync::OnceLock<Vec<(String, &'static infra_builtins::Builtin)>> =
        std::sync::OnceLock::new();
    SHAS.get_or_init(|| {
        infra_builtins::BUILTINS
            .iter()
            .map(|b| (infra_runtime::sha256_hex(b.bytes), b))
            .collect()
    })
}

/// Default largest plugin a node installs.
pub const MAX_PLUGIN_BYTES: usize = 64 * 1024 * 1024;

/// Installed plugins and the cluster-wide active ones.
pub struct ClusterPlugins {
    runtime: Runtime,
    max_bytes: usize,
    dir: Option<PathBuf>,
    installed: Mutex<BTreeMap<String, Plugin>>,
    /// The blob holding each installed plugin's bytes, by the plugin's sha256.
    blobs: Mutex<HashMap<String, BlobId>>,
    /// Operator keys a plugin must be signed by (`None`: an open node, which checks nothing).
    trust: Option<Trusted>,
    /// Each installed plugin's signature, by sha256.
    signatures: Mutex<HashMap<String, PluginSignature>>,
    /// When the newest swap order this node took was issued (ms since the epoch).
    last_order_ms: Mutex<u64>,
    /// Active plugin per kind after cluster-wide swaps (global scope).
    pub registry: Registry,
    /// The scheduler and aggregator swaps made active, for running jobs.
    swapped_scheduler: watch::Sender<Option<Plugin>>,
    swapped_aggregator: watch::Sender<Option<Plugin>>,
}

impl ClusterPlugins {
    /// Opens the plugin folder (`None`: nothing is kept on disk) and reloads what it holds;
    /// their bytes go into `store` so peers can fetch them.
    pub fn open(
        runtime: Runtime,
        dir: Option<PathBuf>,
        max_bytes: usize,
        trust: Option<Trusted>,
        store: &BlobStore,
    ) -> Result<Self, ClusterError> {
        let me = Self {
            runtime,
            max_bytes,
            dir,
            installed: Mutex::new(BTreeMap::new()),
            blobs: Mutex::new(HashMap::new()),
            trust,
            signatures: Mutex::new(HashMap::new()),
            last_order_ms: Mutex::new(0),
            registry: Registry::new(),
            swapped_scheduler: watch::channel(None).0,
            swapped_aggregator: watch::channel(None).0,
        };
        if let Some(dir) = &me.dir {
            std::fs::create_dir_all(dir)
                .map_err(|e| ClusterError::Io(format!("{}: {e}", dir.display())))?;
            for entry in std::fs::read_dir(dir).map_err(|e| ClusterError::Io(e.to_string()))? {
                let path = entry.map_err(|e| ClusterError::Io(e.to_string()))?.path();
                if path.extension().is_some_and(|e| e == "wasm") {
                    let bytes = std::fs::read(&path)
                        .map_err(|e| ClusterError::Io(format!("{}: {e}", path.display())))?;
                    let sig_path = PluginSignature::path_for(&path);
                    let sig = sig_path.exists().then(|| PluginSignature::load(&sig_path));
                    let loaded = match sig.transpose() {
                        Ok(sig) => me
                            .runtime
                            .load(&bytes)
                            .map_err(ClusterError::from)
                            .and_then(|p| {
                                me.admit(p.meta(), sig.as_ref())?;
                                Ok((p, sig))
                            }),
                        Err(e) => Err(ClusterError::Refused(e.to_string())),
                    };
                    match loaded {
                        Ok((p, sig)) => me.keep(p, sig, store.put(bytes)),
                        Err(e) => {
                            tracing::warn!(path = %path.display(), "installed plugin not loaded: {e}")
                        }
                    }
                }
            }
        }
        Ok(me)
    }

    /// Checks that a closed node may run the plugin `meta` describes: `signature` must be by a
    /// trusted key over exactly its sha256, kind, name and version. Returns the signer.
    pub fn admit(
        &self,
        meta: &PluginMeta,
        signature: Option<&PluginSignature>,
    ) -> Result<Option<infra_trust::PublicKey>, ClusterError> {
        let Some(trust) = &self.trust else {
            return Ok(None);
        };
        // The built-ins are trusted as part of this binary, whoever uploads their bytes.
        if builtin_shas().iter().any(|(sha, _)| *sha == meta.sha256) {
            return Ok(None);
        }
        let what = format!(
            "plugin {} {} ({}, sha256 {})",
            meta.name, meta.version, meta.kind, meta.sha256
        );
        let Some(sig) = signature else {
            return Err(ClusterError::Refused(format!(
                "{what} is not signed; a closed cluster runs only plugins signed by a trusted operator key (`infra plugin sign`)"
            )));
        };
        sig.check(
            trust,
            meta.kind.name(),
            &meta.name,
            &meta.version,
            &meta.sha256,
        )
        .map(Some)
        .map_err(|e| ClusterError::Refused(e.to_string()))
    }

    /// Checks a swap order (TOML) on a closed node: signed by a trusted key, for exactly this
    /// `kind` and `sha`, and issued after the last order this node took (so an old order
    /// replayed cannot roll a swap back). With `take`, this order becomes the last one taken.
    /// An open node takes any swap.
    pub fn check_order(
        &self,
        kind: PluginKind,
        sha: &str,
        order: Option<&str>,
        take: bool,
    ) -> Result<(), ClusterError> {
        let Some(trust) = &self.trust else {
            return Ok(());
        };
        let refused = |m: String| ClusterError::Refused(m);
        let order = order.ok_or_else(|| {
            refused(format!(
                "swapping the {kind} to {sha} needs an order signed by a trusted operator key (`infra plugin swap --key`)"
            ))
        })?;
        let order = SwapOrder::from_toml(order).map_err(|e| refused(e.to_string()))?;
        order
            .check(trust, kind.name(), sha)
            .map_err(|e| refused(e.to_string()))?;
        let mut last = self.last_order_ms.lock().expect("plugins lock");
        if order.issued_ms <= *last {
            return Err(refused(format!(
                "the swap order for {kind} {sha} was issued at {} ms, not after the last order this host took ({} ms): an old order is not taken again",
                order.issued_ms, *last
            )));
        }
        if take {
            *last = order.issued_ms;
        }
        Ok(())
    }

    /// The signature an installed plugin came with.
    pub fn signature(&self, sha256: &str) -> Option<PluginSignature> {
        self.signatures
            .lock()
            .expect("plugins lock")
            .get(sha256)
            .cloned()
    }

    /// Checks and installs a component (idempotent) with its signature (required on a closed
    /// node); returns what it is.
    pub fn install(
        &self,
        bytes: Vec<u8>,
        signature: Option<PluginSignature>,
        store: &BlobStore,
    ) -> Result<PluginMeta, ClusterError> {
        if bytes.len() > self.max_bytes {
            return Err(ClusterError::BadJob(format!(
                "plugin of {} bytes exceeds this host's max-plugin-bytes ({})",
                bytes.len(),
                self.max_bytes
            )));
        }
        let plugin = self.runtime.load(&bytes)?;
        let meta = plugin.meta().clone();
        self.admit(&meta, signature.as_ref())?;
        if let Some(dir) = &self.dir {
            let path = dir.join(format!("{}.wasm", meta.sha256));
            let write = |path: &std::path::Path, bytes: &[u8]| {
                infra_train::durable::replace(path, bytes)
                    .map_err(|e| ClusterError::Io(format!("{}: {e}", path.display())))
            };
            if let Some(sig) = &signature {
                write(&PluginSignature::path_for(&path), sig.to_toml().as_bytes())?;
            }
            if !path.exists() {
                write(&path, &bytes)?;
            }
        }
        self.keep(plugin, signature, store.put(bytes));
        tracing::info!(
            name = meta.name,
            sha256 = meta.sha256,
            kind = meta.kind.name(),
            "plugin installed"
        );
        Ok(meta)
    }

    fn keep(&self, plugin: Plugin, signature: Option<PluginSignature>, blob: BlobId) {
        let sha = plugin.meta().sha256.clone();
        self.remember_blob(sha.clone(), blob);
        if let Some(sig) = signature {
            self.signatures
                .lock()
                .expect("plugins lock")
                .insert(sha.clone(), sig);
        }
        self.installed
            .lock()
            .expect("plugins lock")
            .insert(sha, plugin);
    }

    /// Records that `blob` holds the bytes of plugin `sha256` (what peers are told).
    pub(crate) fn remember_blob(&self, sha256: String, blob: BlobId) {
        self.blobs
            .lock()
            .expect("plugins lock")
            .insert(sha256, blob);
    }

    /// The blob that holds installed plugin `sha256`'s bytes.
    pub fn blob_of(&self, sha256: &str) -> Option<BlobId> {
        self.blobs
            .lock()
            .expect("plugins lock")
            .get(sha256)
            .cloned()
    }

    /// An installed plugin by sha256.
    pub fn installed(&self, sha256: &str) -> Option<Plugin> {
        self.installed
            .lock()
            .expect("plugins lock")
            .get(sha256)
            .cloned()
    }

    /// Every installed plugin.
    pub fn list_installed(&self) -> Vec<PluginMeta> {
        self.installed
            .lock()
            .expect("plugins lock")
            .values()
            .map(|p| p.meta().clone())
            .collect()
    }

    /// A plugin by sha256, installed or built in.
    pub fn by_sha(&self, sha256: &str) -> Option<Plugin> {
        if let Some(p) = self.installed(sha256) {
            return Some(p);
        }
        let b = builtin_shas().iter().find(|(sha, _)| sha == sha256)?.1;
        self.runtime.load(b.bytes).ok()
    }

    /// Resolves a job's plugin reference: `sha256:<hex>` (installed) or a built-in name.
    pub fn resolve(&self, r: &PluginRef, kind: PluginKind) -> Result<Plugin, ClusterError> {
        let plugin = if let Some(sha) = r.plugin.strip_prefix(SHA_PREFIX) {
            self.by_sha(sha).ok_or_else(|| {
                ClusterError::BadJob(format!("plugin {} is not installed on this host", r.plugin))
            })?
        } else if r.plugin.ends_with(".wasm") {
            return Err(ClusterError::BadJob(format!(
                "plugin `{}`: a cluster job names installed plugins by `sha256:<hex>` (`infra submit` uploads .wasm files)",
                r.plugin
            )));
        } else {
            infra_builtins::load(&self.runtime, &r.plugin, kind)?
        };
        plugin.expect_kind(kind)?;
        Ok(plugin.with_config(r.config_pairs())?)
    }

    /// sha256 of the active plugin per kind (for the status heartbeat).
    pub fn active_shas(&self) -> BTreeMap<String, String> {
        self.registry
            .list()
            .into_iter()
            .map(|(k, _, m)| (k.name().to_string(), m.sha256))
            .collect()
    }

    /// Makes `p` the active plugin of its kind cluster-wide here, and tells running jobs.
    pub fn activate(&self, p: Plugin) -> infra_runtime::SwapRecord {
        let rec = self.registry.swap(infra_runtime::Scope::Global, p.clone());
        match p.meta().kind {
            PluginKind::Scheduler => self.swapped_scheduler.send_replace(Some(p)),
            PluginKind::Aggregator => self.swapped_aggregator.send_replace(Some(p)),
            PluginKind::Cleaner => None,
        };
        rec
    }

    /// Swaps of `kind` from now on (schedulers and aggregators; cleaners form per-job chains).
    pub fn subscribe(&self, kind: PluginKind) -> Option<watch::Receiver<Option<Plugin>>> {
        match kind {
            PluginKind::Scheduler => Some(self.swapped_scheduler.subscribe()),
            PluginKind::Aggregator => Some(self.swapped_aggregator.subscribe()),
            PluginKind::Cleaner => None,
        }
    }
}

/// Installs plugin `sha` from peer `from` unless `plugins` has it: asks which blob holds it,
/// fetches that, and checks the bytes' sha256 before installing them. Returns what the fetch
/// moved, or `None` when nothing had to be fetched.
pub(crate) async fn fetch_plugin(
    net: &Client,
    store: &BlobStore,
    links: &Links,
    plugins: &ClusterPlugins,
    from: PeerId,
    sha: &str,
) -> Result<Option<transfer::Fetched>, ClusterError> {
    use crate::messages::{Request, Response};
    if plugins.by_sha(sha).is_some() {
        return Ok(None);
    }
    let answer = net
        .request(from, Request::PluginBlob { sha256: sha.into() }.to_frame())
        .await?;
    let Response::Blob { id, signature } = Response::from_frame(&answer)? else {
        return Err(ClusterError::Protocol("expected a blob id".into()));
    };
    let signature = signature
        .map(|s| PluginSignature::from_toml(&s, &format!("signature of plugin {sha} from {from}")))
        .transpose()
        .map_err(|e| ClusterError::Refused(e.to_string()))?;
    // Refused before the download when the manifest says it is over this host's limit.
    let f = transfer::fetch_at_most(net, store, links, from, &id, plugins.max_bytes as u64)
        .await
        .map_err(|e| match e {
            ClusterError::Transfer(m) if m.contains("exceeds the limit") => {
                ClusterError::BadJob(format!("plugin {sha}: {m} (this host's max-plugin-bytes)"))
            }
            e => e,
        })?;
    let got = infra_runtime::sha256_hex(&f.bytes);
    if got != sha {
        store.remove(&id);
        return Err(ClusterError::Transfer(format!(
            "peer {from} sent blob {id} for plugin {sha}, but its sha256 is {got}"
        )));
    }
    plugins.install(f.bytes.to_vec(), signature, store)?;
    Ok(Some(f))
}
