//! `priority` placing 1,000 tasks on 100 nodes: the Wasm plugin (inputs lowered into the
//! sandbox, answer lifted and checked by the host) against the same algorithm natively (fed
//! owned copies of the inputs, as the guest gets, and followed by the same host check).

use crate::{fmt_time, median_time, Row};
use infra_runtime::scheduler::{check_assignments, Holding, Node, Pending, Task, Tier};
use infra_runtime::{PluginKind, Runtime};
use infra_sdk::Scheduler;

fn to_sdk_res(r: &infra_runtime::scheduler::Resources) -> infra_sdk::Resources {
    infra_sdk::Resources {
        cpu_millis: r.cpu_millis,
        memory_mib: r.memory_mib,
        gpus: r.gpus,
    }
}

fn to_sdk_task(t: &Task) -> infra_sdk::Task {
    infra_sdk::Task {
        id: t.id,
        job: t.job,
        priority: t.priority,
        demand: to_sdk_res(&t.demand),
        est_duration_ms: t.est_duration_ms,
        input_bytes: t.input_bytes,
        attempts: t.attempts,
    }
}

fn to_sdk_holding(h: &Holding) -> infra_sdk::Holding {
    infra_sdk::Holding {
        task: h.task,
        node: h.node,
    }
}

fn to_sdk(p: &Pending) -> infra_sdk::Pending {
    infra_sdk::Pending {
        jobs: p.jobs.clone(),
        tasks: p.tasks.iter().map(to_sdk_task).collect(),
        nodes: p.nodes.iter().map(to_sdk_node).collect(),
        holdings: p.holdings.iter().map(to_sdk_holding).collect(),
    }
}

fn to_sdk_node(n: &Node) -> infra_sdk::Node {
    infra_sdk::Node {
        id: n.id.clone(),
        tier: match n.tier {
            Tier::Server => infra_sdk::Tier::Server,
            Tier::Edge => infra_sdk::Tier::Edge,
        },
        capacity: to_sdk_res(&n.capacity),
        free: to_sdk_res(&n.free),
        load: n.load,
        labels: n.labels.clone(),
        rtt_ms: n.rtt_ms,
        bandwidth_bytes_per_s: n.bandwidth_bytes_per_s,
    }
}

fn to_host(a: infra_sdk::Assignment) -> infra_runtime::scheduler::Assignment {
    infra_runtime::scheduler::Assignment {
        task: a.task,
        node: a.node,
    }
}

pub fn run(runtime: &Runtime, reps: usize) -> Vec<Row> {
    let pending = infra_builtins::sample::pending(1000, infra_builtins::sample::nodes(100, 9), 9);
    let sdk_pending = to_sdk(&pending);

    let mut native_placed = Vec::new();
    let native = median_time(reps, || {
        let placed = infra_policies::scheduler::Priority.schedule(sdk_pending.clone());
        native_placed = placed.into_iter().map(to_host).collect();
        check_assignments(&pending, &native_placed).unwrap();
    });
    let check_only = median_time(reps, || {
        check_assignments(&pending, &native_placed).unwrap()
    });

    let plugin = infra_builtins::load(runtime, "priority", PluginKind::Scheduler).unwrap();
    let mut inst = plugin.instance();
    let mut wasm_placed = Vec::new();
    let wasm = median_time(reps, || wasm_placed = inst.schedule(&pending).unwrap());
    assert_eq!(
        wasm_placed, native_placed,
        "Wasm and native priority disagree"
    );

    vec![Row {
        what: format!(
            "priority, 1,000 tasks on 100 nodes ({} placed; host check {} of each)",
            wasm_placed.len(),
            fmt_time(check_only)
        ),
        wasm: fmt_time(wasm),
        native: fmt_time(native),
        ratio: format!(
            "{:.2}x native time",
            wasm.as_secs_f64() / native.as_secs_f64()
        ),
        target: "<= 1.5x and < 1 ms".into(),
    }]
}
