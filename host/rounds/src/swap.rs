//! The scheduler and aggregator a running job uses, and how cluster-wide swaps reach it: a
//! watch channel per kind carries the plugin a swap made active; the job takes it at its next
//! scheduling decision (scheduler) or aggregation (aggregator) and writes it into its history.

use crate::events::{EventKind, JobEvent, Observer};
use crate::ident;
use infra_runtime::{Instance, Plugin, PluginKind};
use tokio::sync::watch;

/// A feed of the plugin cluster-wide swaps make active (`None` until the first swap).
pub type Feed = watch::Receiver<Option<Plugin>>;

/// The swap feeds a job follows (local jobs follow none).
#[derive(Default)]
pub struct Swaps {
    /// Scheduler swaps.
    pub scheduler: Option<Feed>,
    /// Aggregator swaps.
    pub aggregator: Option<Feed>,
}

/// A plugin instance that a swap may replace.
pub(crate) struct Swappable {
    kind: PluginKind,
    pub instance: Instance,
    feed: Option<Feed>,
}

impl Swappable {
    /// The job's own plugin; swaps made before now are not the job's (it names its own).
    pub fn new(kind: PluginKind, plugin: &Plugin, mut feed: Option<Feed>) -> Self {
        if let Some(f) = &mut feed {
            f.mark_unchanged();
        }
        Self {
            kind,
            instance: plugin.instance(),
            feed,
        }
    }

    /// Takes a swap made since the last look, if any: a fresh instance of the new plugin
    /// (default configuration), recorded in the job's plugins and history.
    pub fn refresh(&mut self, round: u32, obs: &impl Observer) {
        let Some(feed) = &mut self.feed else { return };
        if !feed.has_changed().unwrap_or(false) {
            return;
        }
        let Some(new) = feed.borrow_and_update().clone() else {
            return;
        };
        if new.meta().kind != self.kind || new.meta().sha256 == self.instance.plugin().meta().sha256
        {
            return;
        }
        let (old, now) = (ident(self.instance.plugin()), ident(&new));
        self.instance = new.instance();
        let kind = self.kind.name();
        obs.plugin(kind, &now);
        obs.event(JobEvent::note(
            EventKind::Swap,
            round,
            format!("{kind}: {old} -> {now} from round {round}"),
        ));
    }
}
