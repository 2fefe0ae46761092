//! Hot swap: atomic, loses no call under concurrency, keeps in-flight calls on the old
//! plugin, records every swap with both sha256, and rolls back.

use infra_runtime::{PluginKind, Registry, Scope};
use infra_tests::*;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

#[test]
fn swap_under_concurrent_calls_loses_no_call() {
    let rt = runtime();
    let fifo = builtin(&rt, "fifo", PluginKind::Scheduler);
    let priority = builtin(&rt, "priority", PluginKind::Scheduler);
    let registry = Arc::new(Registry::new());
    registry.swap(Scope::Global, fifo.clone());

    let pending = infra_builtins::sample::pending(50, infra_builtins::sample::nodes(20, 1), 1);
    let done = Arc::new(AtomicBool::new(false));
    let swaps = Arc::new(AtomicUsize::new(0));
    let seen_names = Arc::new(std::sync::Mutex::new(std::collections::BTreeSet::new()));
    // Each caller makes at least CALLS_PER_THREAD calls and goes on until MIN_SWAPS swaps have
    // happened, so calls and swaps overlap however the threads are scheduled.
    const CALLS_PER_THREAD: usize = 200;
    const MIN_SWAPS: usize = 20;
    let workers: Vec<_> = (0..4)
        .map(|_| {
            let (registry, pending, swaps, seen) = (
                registry.clone(),
                pending.clone(),
                swaps.clone(),
                seen_names.clone(),
            );
            std::thread::spawn(move || {
                let mut calls = 0;
                while calls < CALLS_PER_THREAD || swaps.load(Ordering::Relaxed) < MIN_SWAPS {
                    calls += 1;
                    let plugin = registry
                        .active(PluginKind::Scheduler, &Scope::Global)
                        .unwrap();
                    let placed = plugin
                        .instance()
                        .schedule(&pending)
                        .expect("no call may fail");
                    assert!(!placed.is_empty());
                    seen.lock().unwrap().insert(plugin.meta().name.clone());
                }
            })
        })
        .collect();
    let swapper = {
        let (registry, done, swaps) = (registry.clone(), done.clone(), swaps.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                let next = if swaps.load(Ordering::Relaxed) % 2 == 0 {
                    priority.clone()
                } else {
                    fifo.clone()
                };
                registry.swap(Scope::Global, next);
                swaps.fetch_add(1, Ordering::Relaxed);
                std::thread::yield_now();
            }
        })
    };
    for w in workers {
        w.join().expect("a call failed during the swaps");
    }
    done.store(true, Ordering::Relaxed);
    swapper.join().unwrap();
    let swaps = swaps.load(Ordering::Relaxed);
    assert_eq!(
        seen_names.lock().unwrap().len(),
        2,
        "both plugins served calls"
    );
    assert_eq!(registry.history().len(), swaps + 1);
}

#[test]
fn a_call_in_flight_finishes_on_the_old_plugin() {
    let rt = runtime();
    let registry = Registry::new();
    registry.swap(Scope::Global, builtin(&rt, "fifo", PluginKind::Scheduler));
    // A caller took the old plugin and opened an instance (its call is "in flight").
    let old = registry
        .active(PluginKind::Scheduler, &Scope::Global)
        .unwrap();
    let mut in_flight = old.instance();
    registry.swap(
        Scope::Global,
        builtin(&rt, "priority", PluginKind::Scheduler),
    );
    // Round-robin (fifo) places t0 on n0 and t1 on n1; priority would put both on the
    // roomier n1 first. The in-flight instance still answers as fifo.
    let mut n0 = node("n0", res(2000, 1000, 0));
    n0.free = res(1000, 1000, 0);
    let nodes = vec![n0, node("n1", res(4000, 1000, 0))];
    let p = pending(
        &[task(0, 1, res(100, 10, 0)), task(1, 1, res(100, 10, 0))],
        &nodes,
    );
    let placed = pairs(&p, &in_flight.schedule(&p).unwrap());
    assert_eq!(placed, vec![(0, "n0".into()), (1, "n1".into())]);
    let now = registry
        .active(PluginKind::Scheduler, &Scope::Global)
        .unwrap();
    assert_eq!(now.meta().name, "priority");
}

#[test]
fn swaps_are_recorded_with_both_sha256_and_roll_back() {
    let rt = runtime();
    let registry = Registry::new();
    let fedavg = builtin(&rt, "fedavg", PluginKind::Aggregator);
    let median = builtin(&rt, "median", PluginKind::Aggregator);
    let job = Scope::Job("digits-1".into());
    let first = registry.swap(job.clone(), fedavg.clone());
    assert_eq!(first.old, None);
    let second = registry.swap(job.clone(), median.clone());
    assert_eq!(
        second.old,
        Some(("fedavg".into(), fedavg.meta().sha256.clone()))
    );
    assert_eq!(second.new, ("median".into(), median.meta().sha256.clone()));
    assert_eq!(
        registry
            .active(PluginKind::Aggregator, &job)
            .unwrap()
            .meta()
            .name,
        "median"
    );

    let back = registry
        .rollback(PluginKind::Aggregator, job.clone())
        .unwrap();
    assert!(back.rollback);
    assert_eq!(back.new.0, "fedavg");
    assert_eq!(
        registry
            .active(PluginKind::Aggregator, &job)
            .unwrap()
            .meta()
            .name,
        "fedavg"
    );
    assert_eq!(registry.history().len(), 3);

    // Rolling back twice in a row swaps back; with no previous plugin it is refused.
    let lone = Scope::Job("lone".into());
    registry.swap(lone.clone(), fedavg.clone());
    let err = registry.rollback(PluginKind::Aggregator, lone).unwrap_err();
    assert!(
        matches!(err, infra_runtime::PluginError::NothingToRollBack { .. }),
        "{err}"
    );

    // A job without its own plugin falls back to the node-wide one; none at all is an error.
    assert!(registry
        .active(PluginKind::Aggregator, &Scope::Job("other".into()))
        .is_err());
    registry.swap(Scope::Global, median);
    let fallback = registry
        .active(PluginKind::Aggregator, &Scope::Job("other".into()))
        .unwrap();
    assert_eq!(fallback.meta().name, "median");
}
