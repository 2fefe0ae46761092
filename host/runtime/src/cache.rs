//! Compiled-code cache. Compiling a component takes 26 ms (Rust guest) to 8 s (Python guest);
//! loading precompiled code takes ~1 ms. Entries are keyed by the component's sha256 and the
//! engine's compatibility hash (wasmtime version + settings), so an engine upgrade never
//! loads stale code. Files are written to a temporary name and renamed, so a crash never
//! leaves a half-written entry; an unreadable entry is recompiled and replaced.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::PathBuf;
use std::sync::Mutex;
use wasmtime::component::Component;
use wasmtime::Engine;

/// Where a component's compiled code came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheSource {
    /// Already compiled in this process.
    Memory,
    /// Loaded from the disk cache.
    Disk,
    /// Compiled now.
    Compiled,
}

pub(crate) struct Cache {
    dir: Option<PathBuf>,
    engine_key: String,
    memory: Mutex<HashMap<String, Component>>,
}

impl Cache {
    pub(crate) fn new(engine: &Engine, dir: Option<PathBuf>) -> Self {
        let mut h = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        Self {
            dir,
            engine_key: format!("{:016x}", h.finish()),
            memory: Mutex::default(),
        }
    }

    /// The compiled component for `bytes` (whose sha256 hex is `sha`).
    pub(crate) fn get(
        &self,
        engine: &Engine,
        bytes: &[u8],
        sha: &str,
    ) -> wasmtime::Result<(Component, CacheSource)> {
        if let Some(c) = self.lock().get(sha) {
            return Ok((c.clone(), CacheSource::Memory));
        }
        let (component, source) = self.load_or_compile(engine, bytes, sha)?;
        self.lock().insert(sha.to_string(), component.clone());
        Ok((component, source))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Component>> {
        self.memory.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn load_or_compile(
        &self,
        engine: &Engine,
        bytes: &[u8],
        sha: &str,
    ) -> wasmtime::Result<(Component, CacheSource)> {
        let Some(dir) = &self.dir else {
            return Ok((Component::new(engine, bytes)?, CacheSource::Compiled));
        };
        let path = dir.join(format!("{sha}-{}.cwasm", self.engine_key));
        if path.exists() {
            // SAFETY: files in the cache directory are written only by `precompile_component`
            // of an engine with the same compatibility hash (part of the file name). The
            // directory must not be writable by untrusted users (documented in README).
            match unsafe { Component::deserialize_file(engine, &path) } {
                Ok(c) => return Ok((c, CacheSource::Disk)),
                Err(e) => {
                    tracing::warn!(path = %path.display(), "unreadable cache entry, recompiling: {e}")
                }
            }
        }
        let compiled = engine.precompile_component(bytes)?;
        if let Err(e) = write_atomically(dir, &path, &compiled) {
            tracing::warn!(dir = %dir.display(), "cannot write the component cache: {e}");
        }
        // SAFETY: `compiled` was produced just above by this engine.
        let component = unsafe { Component::deserialize(engine, &compiled)? };
        Ok((component, CacheSource::Compiled))
    }
}

fn write_atomically(
    dir: &std::path::Path,
    path: &std::path::Path,
    data: &[u8],
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}
