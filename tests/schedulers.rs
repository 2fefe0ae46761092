//! The built-in schedulers' behaviour, through their real components.

use infra_runtime::scheduler::{Holding, Node, Pending, Task, Tier};
use infra_runtime::{PluginError, PluginKind};
use infra_tests::*;

const ALL: [&str; 5] = ["fifo", "priority", "least-loaded", "best-fit", "locality"];

fn schedule(name: &str, tasks: &[Task], nodes: &[Node]) -> Vec<(u64, String)> {
    schedule_pending(name, &pending(tasks, nodes))
}

fn schedule_pending(name: &str, pending: &Pending) -> Vec<(u64, String)> {
    let rt = runtime();
    let p = builtin(&rt, name, PluginKind::Scheduler);
    pairs(pending, &p.instance().schedule(pending).unwrap())
}

fn n(id: &str) -> String {
    id.to_string()
}

#[test]
fn every_scheduler_leaves_tasks_pending_when_no_node_fits() {
    let nodes = vec![node("small", res(1000, 1024, 0))];
    let tasks = vec![
        task(1, 5, res(2000, 10, 0)), // too much CPU
        task(2, 5, res(10, 4096, 0)), // too much memory
        task(3, 5, res(10, 10, 1)),   // needs a GPU
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
    let tasks = vec![task(1, 1, res(600, 10, 0)), task(2, 1, res(600, 10, 0))];
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
        .map(|i| task(i, 9 - i as i32, res(1000, 100, 0)))
        .collect();
    assert_eq!(
        schedule("fifo", &tasks, &nodes),
        vec![(0, n("n0")), (1, n("n1")), (2, n("n2")), (3, n("n0"))]
    );
}

#[test]
fn priority_places_the_highest_first_and_skips_what_fits_nowhere() {
    let nodes = vec![node("n", res(1000, 4096, 0))];
    const LOW: u64 = 10;
    const HUGE: u64 = 20;
    const HIGH: u64 = 30;
    const MID: u64 = 40;
    let tasks = vec![
        task(LOW, 1, res(500, 10, 0)),
        task(HUGE, 9, res(5000, 10, 0)),
        task(HIGH, 8, res(700, 10, 0)),
        task(MID, 5, res(400, 10, 0)),
    ];
    // HUGE fits nowhere and stays pending without blocking the others; HIGH goes first,
    // then only 300 millis are left, so MID and LOW wait.
    assert_eq!(schedule("priority", &tasks, &nodes), vec![(HIGH, n("n"))]);
    let roomy = vec![node("n", res(1200, 4096, 0))];
    assert_eq!(
        schedule("priority", &tasks, &roomy),
        vec![(HIGH, n("n")), (MID, n("n"))]
    );
}

#[test]
fn priority_spreads_to_the_node_with_most_room() {
    let mut busy = node("busy", res(4000, 4096, 0));
    busy.free = res(1000, 1024, 0);
    let nodes = vec![busy, node("idle", res(4000, 4096, 0))];
    let tasks = vec![task(7, 1, res(500, 100, 0))];
    assert_eq!(schedule("priority", &tasks, &nodes), vec![(7, n("idle"))]);
}

#[test]
fn least_loaded_balances_load() {
    let mut hot = node("hot", res(4000, 4096, 0));
    hot.load = 0.9;
    let mut warm = node("warm", res(4000, 4096, 0));
    warm.load = 0.5;
    let cool = node("cool", res(4000, 4096, 0));
    let tasks: Vec<Task> = (0..3).map(|i| task(i, 1, res(1000, 10, 0))).collect();
    // Projected load: cool 0 -> 0.25 -> 0.5; the third task sees warm 0.5 and cool 0.5 and
    // takes the first of equals in node order (warm). `hot` never gets anything.
    assert_eq!(
        schedule("least-loaded", &tasks, &[hot, warm, cool]),
        vec![(0, n("cool")), (1, n("cool")), (2, n("warm"))]
    );
}

#[test]
fn best_fit_packs_into_the_tightest_node() {
    let nodes = vec![
        node("big", res(16000, 65536, 0)),
        node("snug", res(1100, 1100, 0)),
        node("medium", res(4000, 4096, 0)),
    ];
    let tasks = vec![task(1, 1, res(1000, 1000, 0))];
    assert_eq!(schedule("best-fit", &tasks, &nodes), vec![(1, n("snug"))]);
    // Largest first: LARGE takes `medium`; SMALL then fits `medium`'s remainder more
    // tightly than `snug`.
    const SMALL: u64 = 1;
    const LARGE: u64 = 2;
    let tasks = vec![
        task(SMALL, 1, res(1000, 1000, 0)),
        task(LARGE, 1, res(3000, 3000, 0)),
    ];
    assert_eq!(
        schedule("best-fit", &tasks, &nodes),
        vec![(SMALL, n("medium")), (LARGE, n("medium"))]
    );
}

#[test]
fn locality_prefers_the_holder_of_the_input_and_protects_edge_nodes() {
    let mut fast = node("fast", res(4000, 4096, 0));
    fast.bandwidth_bytes_per_s = 1_000_000_000;
    let mut holder = node("holder", res(4000, 4096, 0));
    holder.bandwidth_bytes_per_s = 1_000_000; // slow link, but the data is already there
    holder.rtt_ms = 5.0;
    const WITH_INPUT: u64 = 1;
    const ELSEWHERE: u64 = 2;
    let mut with_input = task(WITH_INPUT, 1, res(100, 100, 0));
    with_input.input_bytes = 500 << 20;
    let mut elsewhere = task(ELSEWHERE, 1, res(100, 100, 0));
    elsewhere.input_bytes = 500 << 20;
    const HELD_TWICE: u64 = 3;
    let mut held_twice = task(HELD_TWICE, 1, res(100, 100, 0));
    held_twice.input_bytes = 500 << 20;
    let mut three = pending(
        &[with_input, elsewhere, held_twice],
        &[fast.clone(), holder],
    );
    // `holder` (node 1) holds the first task's input; both nodes hold the third's, and the
    // lower RTT of `fast` decides. Rows out of order: the SDK's `Holders` groups them.
    three.holdings = [(2, 1), (0, 1), (2, 0)]
        .map(|(task, node)| Holding { task, node })
        .to_vec();
    assert_eq!(
        schedule_pending("locality", &three),
        vec![
            (WITH_INPUT, n("holder")),
            (ELSEWHERE, n("fast")),
            (HELD_TWICE, n("fast"))
        ]
    );

    // An edge board closer than the server, but the input (3 GiB) does not fit its memory.
    let mut edge = node("edge", res(4000, 2048, 0));
    edge.tier = Tier::Edge;
    edge.rtt_ms = 0.1;
    edge.bandwidth_bytes_per_s = 10_000_000_000;
    let mut big = elsewhere;
    big.input_bytes = 3 << 30;
    assert_eq!(
        schedule("locality", &[big], &[edge.clone(), fast]),
        vec![(ELSEWHERE, n("fast"))]
    );
    // A small input may go to the edge board.
    assert_eq!(
        schedule("locality", &[elsewhere], &[edge]),
        vec![(ELSEWHERE, n("edge"))]
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
    let p = pending(
        &[task(41, 1, res(600, 10, 0)), task(42, 1, res(600, 10, 0))],
        &nodes,
    );
    let answer = |a: &str| {
        rogue
            .with_config(vec![("answer".into(), a.into())])
            .unwrap()
            .instance()
            .schedule(&p)
    };
    assert_eq!(
        pairs(&p, &answer("0:1,1:0").unwrap()),
        vec![(41, n("n1")), (42, n("n0"))]
    );
    for (bad, expected) in [
        ("2:0", "task position 2, but only 2 tasks were offered"),
        (
            "0:2",
            "task 41 to node position 2, but only 2 nodes were offered",
        ),
        ("0:0,0:1", "assigned task 41 twice"),
        ("0:0,1:0", "node `n0` has no room for task 42"),
    ] {
        let err = answer(bad).unwrap_err();
        assert!(
            matches!(err, PluginError::Contract { .. }) && err.to_string().contains(expected),
            "answer {bad}: {err}"
        );
    }
}

#[test]
fn holdings_name_offered_nodes_by_position() {
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

/// The task list crosses into the sandbox through the runtime's own lowering (see
/// `infra_runtime::scheduler`), the rest of `pending` through wasmtime's: every field of every
/// record, at the edges of its range, must reach the guest as sent.
#[test]
fn every_field_of_pending_reaches_the_guest_intact() {
    let rt = runtime();
    let echo = rt.load(&guest_bytes("echo-scheduler")).unwrap();
    let extreme = Task {
        id: u64::MAX,
        job: 1,
        priority: i32::MIN,
        demand: res(u32::MAX, u64::MAX - 1, 7),
        est_duration_ms: 1 << 40,
        input_bytes: 123_456_789_012,
        attempts: u32::MAX - 2,
    };
    let plain = task(0, 5, res(1, 2, 3));
    let mut edge = node("edge-1", res(4000, 2048, 1));
    edge.tier = Tier::Edge;
    edge.free = res(1000, 1024, 0);
    edge.load = 0.25;
    edge.labels = vec![("zone".into(), "eu-1".into())];
    edge.rtt_ms = 12.5;
    edge.bandwidth_bytes_per_s = u64::MAX;
    let mut p = pending(&[plain, extreme], &[node("n0", res(1, 1, 0)), edge]);
    p.jobs = vec!["first".into(), "second".into()];
    p.holdings = vec![Holding { task: 1, node: 1 }];

    let (placed, logs) = capture_logs(|| echo.instance().schedule(&p).unwrap());
    assert!(placed.is_empty());
    for line in [
        "echo job 0 first ;".to_string(),
        "echo job 1 second ;".to_string(),
        "echo task 0 0 5 1 2 3 1000 0 0 ;".to_string(),
        format!(
            "echo task {} 1 {} {} {} 7 {} 123456789012 {} ;",
            u64::MAX,
            i32::MIN,
            u32::MAX,
            u64::MAX - 1,
            1u64 << 40,
            u32::MAX - 2
        ),
        "echo node n0 Tier::Server 1 1 0 1 1 0 0 [] 1 100000000 ;".to_string(),
        format!(
            "echo node edge-1 Tier::Edge 4000 2048 1 1000 1024 0 0.25 [(\"zone\", \"eu-1\")] 12.5 {} ;",
            u64::MAX
        ),
        "echo holding 1 1 ;".to_string(),
    ] {
        assert!(logs.contains(&line), "missing `{line}` in:\n{logs}");
    }
}
