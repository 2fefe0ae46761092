//! The active plugin per kind and scope, with atomic hot swap and rollback.
//!
//! A swap replaces the slot's `Plugin` handle under a write lock held for a pointer swap;
//! callers that already took the old handle finish their calls on it (it lives as long as
//! they hold it). The replaced plugin is kept for [`Registry::rollback`]. Every swap is logged
//! with the old and new sha256 and kept in [`Registry::history`].

use crate::plugin::{Plugin, PluginKind, PluginMeta};
use crate::{PluginError, Result};
use std::collections::BTreeMap;
use std::sync::{Mutex, RwLock};
use std::time::SystemTime;

/// Where a plugin is active: the whole node, or one job (which falls back to the node's).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Node-wide default.
    Global,
    /// One job.
    Job(String),
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Global => f.write_str("global"),
            Scope::Job(j) => write!(f, "job {j}"),
        }
    }
}

/// One swap, as recorded in the history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SwapRecord {
    /// Kind swapped.
    pub kind: PluginKind,
    /// Scope swapped.
    pub scope: Scope,
    /// Name and sha256 of the plugin replaced, if any.
    pub old: Option<(String, String)>,
    /// Name and sha256 of the plugin now active.
    pub new: (String, String),
    /// Whether this was a rollback.
    pub rollback: bool,
    /// When.
    pub at: SystemTime,
}

struct Slot {
    active: Plugin,
    previous: Option<Plugin>,
}

/// Active plugins by kind and scope.
#[derive(Default)]
pub struct Registry {
    slots: RwLock<BTreeMap<(PluginKind, Scope), Slot>>,
    history: Mutex<Vec<SwapRecord>>,
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes `plugin` the active one for its kind in `scope`; the one it replaces is kept
    /// for rollback.
    pub fn swap(&self, scope: Scope, plugin: Plugin) -> SwapRecord {
        let kind = plugin.meta().kind;
        let new = ident(plugin.meta());
        let old = {
            let mut slots = self.slots.write().unwrap_or_else(|e| e.into_inner());
            match slots.get_mut(&(kind, scope.clone())) {
                Some(slot) => {
                    let prev = std::mem::replace(&mut slot.active, plugin);
                    let old = ident(prev.meta());
                    slot.previous = Some(prev);
                    Some(old)
                }
                None => {
                    slots.insert(
                        (kind, scope.clone()),
                        Slot {
                            active: plugin,
                            previous: None,
                        },
                    );
                    None
                }
            }
        };
        self.record(kind, scope, old, new, false)
    }

    /// Makes the previous plugin of `kind` in `scope` active again.
    pub fn rollback(&self, kind: PluginKind, scope: Scope) -> Result<SwapRecord> {
        let (old, new) = {
            let mut slots = self.slots.write().unwrap_or_else(|e| e.into_inner());
            let slot = slots
                .get_mut(&(kind, scope.clone()))
                .ok_or_else(|| not_registered(kind, &scope))?;
            let prev = slot
                .previous
                .take()
                .ok_or_else(|| PluginError::NothingToRollBack {
                    kind: kind.name(),
                    scope: scope.to_string(),
                })?;
            let replaced = std::mem::replace(&mut slot.active, prev);
            let old = ident(replaced.meta());
            slot.previous = Some(replaced);
            (old, ident(slot.active.meta()))
        };
        Ok(self.record(kind, scope, Some(old), new, true))
    }

    /// The active plugin of `kind` for `scope` (a job falls back to the global one).
    pub fn active(&self, kind: PluginKind, scope: &Scope) -> Result<Plugin> {
        let slots = self.slots.read().unwrap_or_else(|e| e.into_inner());
        slots
            .get(&(kind, scope.clone()))
            .or_else(|| slots.get(&(kind, Scope::Global)))
            .map(|s| s.active.clone())
            .ok_or_else(|| not_registered(kind, scope))
    }

    /// Every active plugin with its kind and scope.
    pub fn list(&self) -> Vec<(PluginKind, Scope, PluginMeta)> {
        let slots = self.slots.read().unwrap_or_else(|e| e.into_inner());
        slots
            .iter()
            .map(|((k, s), slot)| (*k, s.clone(), slot.active.meta().clone()))
            .collect()
    }

    /// Every swap so far, oldest first.
    pub fn history(&self) -> Vec<SwapRecord> {
        self.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn record(
        &self,
        kind: PluginKind,
        scope: Scope,
        old: Option<(String, String)>,
        new: (String, String),
        rollback: bool,
    ) -> SwapRecord {
        let old_sha = old.as_ref().map_or("none", |o| o.1.as_str());
        tracing::info!(
            %kind, %scope, old_sha, new_sha = %new.1, new_name = %new.0, rollback,
            "plugin swapped"
        );
        let rec = SwapRecord {
            kind,
            scope,
            old,
            new,
            rollback,
            at: SystemTime::now(),
        };
        self.history
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(rec.clone());
        rec
    }
}

fn ident(m: &PluginMeta) -> (String, String) {
    (m.name.clone(), m.sha256.clone())
}

fn not_registered(kind: PluginKind, scope: &Scope) -> PluginError {
    PluginError::NotRegistered {
        kind: kind.name(),
        scope: scope.to_string(),
    }
}
