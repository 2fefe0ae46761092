//! The built-in schedulers' behaviour, through their real components.

use infra_runtime::scheduler::{Node, Task, Tier};
use infra_runtime::{PluginError, PluginKind};
use infra_tests::*;

const ALL: [&str; 5] = ["fifo", "priority", "least-loaded", "best-fit", "locality"];

fn schedule(name: &str, tasks: &[Task], nodes: &[Node]) -> Vec<(String, String)> {
    let rt = runtime();
    let p = builtin(&rt, name, PluginKind::Scheduler);
    pairs(tasks, nodes, &p.instance().schedule(tasks, nodes).unwrap())
}

#[test]
fn every_scheduler_leaves_tasks_pending_when_no_node_fits() {
    let nodes = vec![node("small", res(1000, 1024, 0))];
    let tasks = vec![
        task("too-much-cpu", 5, res(2000, 10, 0)),
        task("too-much-mem", 5, res(10, 4096, 0)),
        task("needs-gpu", 5, res(10, 10, 1)),
    ];
    for name in ALL {
        assert_eq!(schedule(name, &tasks, &nodes), vec![], "{name}");
        assert_eq!(schedule(name, &tasks, &[]), vec![], "{name} with no nodes");
    }
}

#[test]
fn every_scheduler_accounts_resources_as_it_places() {
    // Two tasks of 600 millis each on one 1000-millis node: only one may go there.
    let nodes = vec![node("n1", res(1000, 4096, 0))];
    let tasks = vec![task("a", 1, res(600, 10, 0)), task("b", 1, res(600, 10, 0))];
    for name in ALL {
        assert_eq!(schedule(name, &tasks, &nodes).len(), 1, "{name}");
    }
}

#[test]
fn fifo_goes_round_robin_in_arrival_order() {
    let nodes: Vec<Node> = ["n0", "n1", "n2"]
        .iter()
        .map(|n| node(n, res(4000, 4096, 0)))
        .collect();
    let tasks: Vec<Task> = (0..4)
        .map(|i| task(&format!("t{i}"), 9 - i, res(1000, 100, 0)))
        .collect();
    assert_eq!(
        schedule("fifo", &tasks, &nodes),
        vec![
            ("t0".into(), "n0".into()),
            ("t1".into(), "n1".into()),
            ("t2".into(), "n2".into()),
            ("t3".into(), "n0".into()),
        ]
    );
}

#[test]
fn priority_places_the_highest_first_and_skips_what_fits_nowhere() {
    let nodes = vec![node("n", res(1000, 4096, 0))];
    let tasks = vec![
        task("low", 1, res(500, 10, 0)),
        task("huge", 9, res(5000, 10, 0)),
        task("high", 8, res(700, 10, 0)),
        task("mid", 5, res(400, 10, 0)),
    ];
    // `huge` fits nowhere and stays pending without blocking the others; `high` goes first,
    // then only 300 millis are left, so `mid` and `low` wait.
    assert_eq!(
        schedule("priority", &tasks, &nodes),
        vec![("high".into(), "n".into())]
    );
    let roomy = vec![node("n", res(1200, 4096, 0))];
    assert_eq!(
        schedule("priority", &tasks, &roomy),
        vec![("high".into(), "n".into()), ("mid".into(), "n".into())]
    );
}

#[test]
fn priority_spreads_to_the_node_with_most_room() {
    let mut busy = node("busy", res(4000, 4096, 0));
    busy.free = res(1000, 1024, 0);
    let nodes = vec![busy, node("idle", res(4000, 4096, 0))];
    let tasks = vec![task("t", 1, res(500, 100, 0))];
    assert_eq!(
        schedule("priority", &tasks, &nodes),
        vec![("t".into(), "idle".into())]
    );
}

#[test]
fn least_loaded_balances_load() {
    let mut hot = node("hot", res(4000, 4096, 0));
    hot.load = 0.9;
    let mut warm = node("warm", res(4000, 4096, 0));
    warm.load = 0.5;
    let cool = node("cool", res(4000, 4096, 0));
    let tasks: Vec<Task> = (0..3)
        .map(|i| task(&format!("t{i}"), 1, res(1000, 10, 0)))
        .collect();
    // Projected load: cool 0 -> 0.25 -> 0.5; the third task sees warm 0.5 and cool 0.5 and
    // takes the first of equals in node order (warm). `hot` never gets anything.
    assert_eq!(
        schedule("least-loaded", &tasks, &[hot, warm, cool]),
        vec![
            ("t0".into(), "cool".into()),
            ("t1".into(), "cool".into()),
            ("t2".into(), "warm".into()),
        ]
    );
}

#[test]
fn best_fit_packs_into_the_tightest_node() {
    let nodes = vec![
        node("big", res(16000, 65536, 0)),
        node("snug", res(1100, 1100, 0)),
        node("medium", res(4000, 4096, 0)),
    ];
    let tasks = vec![task("t", 1, res(1000, 1000, 0))];
    assert_eq!(
        schedule("best-fit", &tasks, &nodes),
        vec![("t".into(), "snug".into())]
    );
    // Largest first: `large` takes `medium`; `small` then fits `medium`'s remainder more
    // tightly than `snug`.
    let tasks = vec![
        task("small", 1, res(1000, 1000, 0)),
        task("large", 1, res(3000, 3000, 0)),
    ];
    assert_eq!(
        schedule("best-fit", &tasks, &nodes),
        vec![
            ("large".into(), "medium".into()),
            ("small".into(), "medium".into())
        ]
    );
}

#[test]
fn locality_prefers_the_holder_of_the_input_and_protects_edge_nodes() {
    let mut fast = node("fast", res(4000, 4096, 0));
    fast.bandwidth_bytes_per_s = 1_000_000_000;
    let mut holder = node("holder", res(4000, 4096, 0));
    holder.bandwidth_bytes_per_s = 1_000_000; // slow link, but the data is already there
    holder.rtt_ms = 5.0;
    let mut with_input = task("with-input", 1, res(100, 100, 0));
    with_input.input_bytes = 500 << 20;
    with_input.input_holders = vec![1]; // `holder`, second in the nodes below
    let mut elsewhere = task("elsewhere", 1, res(100, 100, 0));
    elsewhere.input_bytes = 500 << 20;
    assert_eq!(
        schedule(
            "locality",
            &[with_input, elsewhere.clone()],
            &[fast.clone(), holder]
        ),
        vec![
            ("elsewhere".into(), "fast".into()),
            ("with-input".into(), "holder".into())
        ]
    );

    // An edge board closer than the server, but the input (3 GiB) does not fit its memory.
    let mut edge = node("edge", res(4000, 2048, 0));
    edge.tier = Tier::Edge;
    edge.rtt_ms = 0.1;
    edge.bandwidth_bytes_per_s = 10_000_000_000;
    let mut big = elsewhere.clone();
    big.input_bytes = 3 << 30;
    assert_eq!(
        schedule("locality", &[big], &[edge.clone(), fast]),
        vec![("elsewhere".into(), "fast".into())]
    );
    // A small input may go to the edge board.
    assert_eq!(
        schedule("locality", &[elsewhere], &[edge]),
        vec![("elsewhere".into(), "edge".into())]
    );
}

#[test]
fn locality_refuses_a_bad_config() {
    let rt = runtime();
    let p = builtin(&rt, "locality", PluginKind::Scheduler);
    let err = p
        .with_config(vec![("default-bandwith".into(), "1e6".into())])
        .err()
        .expect("typo in a key must be refused");
    assert!(
        err.to_string()
            .contains("unknown config key(s): default-bandwith"),
        "{err}"
    );
}

#[test]
fn the_host_refuses_an_answer_with_bad_positions_a_double_placement_or_an_overbooked_node() {
    let rt = runtime();
    let rogue = rt.load(&guest_bytes("rogue-scheduler")).unwrap();
    let nodes = vec![
        node("n0", res(1000, 1024, 0)),
        node("n1", res(1000, 1024, 0)),
    ];
    let tasks = vec![task("a", 1, res(600, 10, 0)), task("b", 1, res(600, 10, 0))];
    let answer = |a: &str| {
        rogue
            .with_config(vec![("answer".into(), a.into())])
            .unwrap()
            .instance()
            .schedule(&tasks, &nodes)
    };
    assert_eq!(
        pairs(&tasks, &nodes, &answer("0:1,1:0").unwrap()),
        vec![("a".into(), "n1".into()), ("b".into(), "n0".into())]
    );
    for (bad, expected) in [
        ("2:0", "task position 2, but only 2 tasks were offered"),
        (
            "0:2",
            "task `a` to node position 2, but only 2 nodes were offered",
        ),
        ("0:0,0:1", "assigned task `a` twice"),
        ("0:0,1:0", "node `n0` has no room for task `b`"),
    ] {
        let err = answer(bad).unwrap_err();
        assert!(
            matches!(err, PluginError::Contract { .. }) && err.to_string().contains(expected),
            "answer {bad}: {err}"
        );
    }
}

#[test]
fn input_holders_are_positions_of_offered_nodes() {
    let nodes = vec![node("n0", res(1, 1, 0)), node("n1", res(1, 1, 0))];
    assert_eq!(
        infra_runtime::scheduler::node_position(&nodes, "n1"),
        Some(1)
    );
    assert_eq!(
        infra_runtime::scheduler::node_position(&nodes, "gone"),
        None
    );
}
