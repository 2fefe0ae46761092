//! A training cluster of real `infra-host` processes on 127.0.0.1: a digits job across three
//! peers (submitted with the `infra` CLI), a scheduler swapped mid-job, a worker killed
//! mid-job, a swap refused by one peer, and a coordinator
//! restarted mid-job that resumes from its checkpoint. Every wait is on an event the hosts
//! print or stream; nothing sleeps.

mod common;

use common::{control, fresh_copy, infra_cli, job_spec, req, rt, Cluster, TOKEN};
use infra_api::pb;
use pb::EventKind;
use std::process::Command;

/// One task per host per wave, so a three-shard round spreads over the three hosts.
fn one_core(data: Option<&tempfile::TempDir>, i: usize) -> Vec<String> {
    let mut a = vec!["--cpu-millis".to_string(), "1000".to_string()];
    if let Some(d) = data {
        a.push("--data-dir".into());
        a.push(d.path().join(format!("host-{i}")).display().to_string());
    }
    a
}

/// `infra submit JOB --watch` against `url`; asserts it succeeded and returns its stdout and
/// the job id (from its first line, `submitted <id> ...`).
fn submit_with_cli(url: &str, job: &std::path::Path) -> (String, String) {
    let out = Command::new(infra_cli())
        .arg("submit")
        .arg(job)
        .arg("--watch")
        .args(["--host", url, "--token", TOKEN])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let id = stdout
        .split_whitespace()
        .nth(1)
        .expect("`submitted <id>`")
        .to_string();
    (stdout, id)
}

/// Submits `spec` to `url` and returns the job id.
async fn submit(url: &str, spec: String) -> String {
    control(url)
        .await
        .submit_job(req(pb::SubmitJobRequest {
            spec_toml: spec,
            data_csv: vec![],
        }))
        .await
        .unwrap()
        .into_inner()
        .id
}

/// Streams the job's events, calling `on` for each, until it ends; returns them all.
async fn watch(url: &str, id: &str, mut on: impl FnMut(&pb::JobEvent)) -> Vec<pb::JobEvent> {
    let mut s = control(url)
        .await
        .watch_job(req(pb::WatchJobRequest { id: id.into() }))
        .await
        .unwrap()
        .into_inner();
    let mut all = Vec::new();
    while let Some(ev) = s.message().await.unwrap() {
        on(&ev);
        all.push(ev);
    }
    all
}

fn rounds(evs: &[pb::JobEvent]) -> Vec<&pb::JobEvent> {
    evs.iter()
        .filter(|e| e.kind() == EventKind::Round)
        .collect()
}

/// Parameters of the digits example's model (64-128-10).
const DIGITS_PARAMS: u64 = 64 * 128 + 128 + 128 * 10 + 10;

/// The fewest bytes a round spread over three peers moved (one without shard fetches).
fn min_bytes_over_three_peers(r: &[&pb::JobEvent]) -> u64 {
    r.iter()
        .filter(|e| e.peers == 3)
        .map(|e| e.bytes)
        .min()
        .expect("a round over three peers")
}

/// `url`'s host knows the throughput to `n` peers, and `infra peers` shows it.
fn assert_links_measured(url: &str, n: usize) {
    let peers = rt().block_on(async {
        control(url)
            .await
            .list_peers(req(pb::ListPeersRequest {}))
            .await
            .unwrap()
            .into_inner()
            .peers
    });
    let measured = peers.iter().filter(|p| p.bandwidth_bytes_per_s > 0.0);
    assert_eq!(measured.count(), n, "{peers:#?}");
    let out = Command::new(infra_cli())
        .args(["peers", "--host", url, "--token", TOKEN])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(table.contains("throughput (MB/s)"), "{table}");
}

#[test]
fn digits_job_across_three_peers_reaches_095_with_the_cli() {
    let data = tempfile::tempdir().unwrap();
    let c = Cluster::start(3, |i| one_core(Some(&data), i));
    let job = data.path().join("job.toml");
    std::fs::write(&job, job_spec(&[])).unwrap();
    let (stdout, id) = submit_with_cli(&c.url(0), &job);
    assert!(
        stdout.contains("round  10: accuracy"),
        "per-round progress: {stdout}"
    );

    let j = rt().block_on(async {
        control(&c.url(0))
            .await
            .get_job(req(pb::GetJobRequest { id: id.clone() }))
            .await
            .unwrap()
            .into_inner()
    });
    assert_eq!(j.state(), pb::JobState::Done, "{j:?}");
    assert_eq!(j.rounds_done, 10);
    assert!(j.accuracy >= 0.95, "accuracy {}", j.accuracy);
    let r = rounds(&j.events);
    assert_eq!(r.len(), 10);
    assert!(
        r.iter().any(|e| e.peers == 3),
        "work spreads over all three peers: {:?}",
        r.iter().map(|e| e.peers).collect::<Vec<_>>()
    );
    assert!(r.iter().all(|e| e.tasks_done == 3 && e.bytes > 0));
    // Rounds are recorded in order, each with its evaluation (which runs beside the next
    // round's tasks).
    assert!(r.windows(2).all(|w| w[0].round + 1 == w[1].round));
    assert!(r.iter().all(|e| e.accuracy > 0.0));
    // Weights down and the update up, as f32, for each of the two remote tasks of a round
    // spread over the three peers (round 1 also moves the shards).
    assert_eq!(min_bytes_over_three_peers(&r), 2 * 2 * 4 * DIGITS_PARAMS);
    // Training requests and their answers measured the links to both workers.
    assert_links_measured(&c.url(0), 2);
    // The coordinator checkpointed the job in its data folder.
    let ckpt = data
        .path()
        .join(format!("host-0/jobs/{id}/checkpoint.safetensors"));
    assert!(ckpt.exists(), "{}", ckpt.display());
    // `infra jobs` lists it.
    let out = Command::new(infra_cli())
        .args(["jobs", "--host", &c.url(0), "--token", TOKEN])
        .output()
        .unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        table.contains(&id) && table.contains("done") && table.contains("10/10"),
        "{table}"
    );
}

#[test]
fn submit_uploads_the_jobs_wasm_plugins_and_csv_data() {
    // A cleaner no host has: the workers must fetch it from the coordinator by its sha256.
    let c = Cluster::start(2, |i| one_core(None, i));
    let dir = tempfile::tempdir().unwrap();
    let cleaner = fresh_copy("dedup");
    std::fs::write(dir.path().join("my-dedup.wasm"), &cleaner).unwrap();
    std::fs::write(dir.path().join("rows.csv"), infra_train::data::DIGITS_CSV).unwrap();
    let spec = job_spec(&[
        ("rounds = 10", "rounds = 4"),
        (
            "source = \"digits\"",
            "source = \"csv\"\npath = \"rows.csv\"",
        ),
        ("plugin = \"dedup\"", "plugin = \"my-dedup.wasm\""),
    ]);
    let job = dir.path().join("job.toml");
    std::fs::write(&job, spec).unwrap();
    let (_, id) = submit_with_cli(&c.url(0), &job);
    let j = rt().block_on(async {
        control(&c.url(0))
            .await
            .get_job(req(pb::GetJobRequest { id }))
            .await
            .unwrap()
            .into_inner()
    });
    assert_eq!(j.state(), pb::JobState::Done, "{j:?}");
    assert!(j.accuracy >= 0.9, "{}", j.accuracy);
    let sha = infra_runtime::sha256_hex(&cleaner);
    assert_eq!(j.plugins["cleaner.1"], format!("dedup sha256:{sha}"));
    assert!(
        rounds(&j.events).iter().any(|e| e.peers == 2),
        "the other host trained too"
    );
    // The worker installed the cleaner it fetched.
    let ps = rt().block_on(async {
        control(&c.url(1))
            .await
            .list_plugins(req(pb::ListPluginsRequest {}))
            .await
            .unwrap()
            .into_inner()
    });
    assert!(
        ps.plugins.iter().any(|p| p.sha256 == sha && !p.builtin),
        "{ps:?}"
    );
}

#[test]
fn scheduler_swapped_mid_job_shows_in_its_history_and_the_job_finishes() {
    let c = Cluster::start(3, |i| one_core(None, i));
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("least-loaded.wasm");
    std::fs::write(&wasm, infra_builtins::find("least-loaded").unwrap().bytes).unwrap();
    // Long enough that the swap (a CLI process, an upload, every peer loading the plugin)
    // lands well before the end, even on a slow machine.
    let spec = job_spec(&[
        ("rounds = 10", "rounds = 100"),
        ("local-epochs = 3", "local-epochs = 1"),
    ]);
    let url = c.url(1);
    let evs = rt().block_on(async {
        let id = submit(&url, spec).await;
        let mut swapped = false;
        watch(&url, &id, |ev| {
            if ev.kind() == EventKind::Round && ev.round == 2 && !swapped {
                swapped = true;
                // Through the CLI, against another host than the coordinator.
                let out = Command::new(infra_cli())
                    .args(["plugin", "swap", "--kind", "scheduler"])
                    .arg(&wasm)
                    .args(["--host", &c.url(2), "--token", TOKEN])
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
                let s = String::from_utf8_lossy(&out.stdout);
                assert!(s.contains("on 3 peer(s)"), "{s}");
            }
        })
        .await
    });
    let swap = evs
        .iter()
        .find(|e| e.kind() == EventKind::Swap)
        .expect("a swap event in the history");
    assert!(
        swap.message.contains("priority") && swap.message.contains("least-loaded"),
        "{}",
        swap.message
    );
    assert!(
        swap.round > 2,
        "takes effect after the round it was made in"
    );
    let last = evs.last().unwrap();
    assert_eq!(last.kind(), EventKind::Done, "{last:?}");
    assert_eq!(rounds(&evs).len(), 100, "no round lost");
    assert!(rounds(&evs).iter().any(|e| e.round > swap.round));
    rt().block_on(async {
        for i in 0..3 {
            let ps = control(&c.url(i))
                .await
                .list_plugins(req(pb::ListPluginsRequest {}))
                .await
                .unwrap()
                .into_inner();
            let active: Vec<_> = ps
                .plugins
                .iter()
                .filter(|p| p.active)
                .map(|p| p.name.as_str())
                .collect();
            assert_eq!(active, ["least-loaded"], "host {i}");
        }
    });
}

#[test]
fn a_worker_killed_mid_job_does_not_stop_it() {
    let mut c = Cluster::start(3, |i| one_core(None, i));
    // Every task must come back (quorum 1): the killed worker's task is given to another peer.
    let spec = job_spec(&[
        ("rounds = 10", "rounds = 8"),
        ("quorum = 0.66", "quorum = 1.0"),
        ("local-epochs = 3", "local-epochs = 6"),
    ]);
    let url = c.url(0);
    let victim = c.hosts[2].peer.clone();
    let mut killed = false;
    let evs = rt().block_on(async {
        let id = submit(&url, spec).await;
        watch(&url, &id, |ev| {
            if ev.kind() == EventKind::Round && ev.round == 2 && !killed {
                killed = true;
                c.kill(2);
            }
        })
        .await
    });
    let last = evs.last().unwrap();
    assert_eq!(last.kind(), EventKind::Done, "{evs:#?}");
    assert!(last.accuracy >= 0.9, "{}", last.accuracy);
    let r = rounds(&evs);
    assert_eq!(r.len(), 8);
    assert!(
        r.iter().all(|e| e.tasks_done == 3),
        "every task of every round returned"
    );
    assert!(
        r.iter().filter(|e| e.round > 2).all(|e| e.peers <= 2),
        "the dead peer does no work"
    );
    // Its task (in flight, or placed before its heartbeats went stale) was noticed and given
    // to another peer.
    for kind in [EventKind::PeerDown, EventKind::Retry] {
        assert!(
            evs.iter()
                .any(|e| e.kind() == kind && e.message.contains(&victim)),
            "no {kind:?} event for the killed peer: {evs:#?}"
        );
    }
}

#[test]
fn a_worker_whose_heartbeats_stop_mid_task_is_marked_down() {
    // A stopped (not killed) process keeps its connections open: only the missing heartbeats
    // tell the coordinator that its task will not come back.
    let mut c = Cluster::start(3, |i| one_core(None, i));
    let spec = job_spec(&[
        ("rounds = 10", "rounds = 6"),
        ("quorum = 0.66", "quorum = 1.0"),
        ("local-epochs = 3", "local-epochs = 40"),
        ("task-deadline-secs = 60", "task-deadline-secs = 600"),
    ]);
    let url = c.url(0);
    let victim = c.hosts[2].peer.clone();
    let pid = c.hosts[2].child.id().to_string();
    let mut stopped = false;
    let evs = rt().block_on(async {
        let id = submit(&url, spec).await;
        watch(&url, &id, |ev| {
            if ev.kind() == EventKind::Round && ev.round == 1 && !stopped {
                stopped = true;
                assert!(Command::new("kill")
                    .args(["-STOP", &pid])
                    .status()
                    .unwrap()
                    .success());
            }
        })
        .await
    });
    let _ = Command::new("kill").args(["-CONT", &pid]).status();
    c.kill(2);
    assert_eq!(evs.last().unwrap().kind(), EventKind::Done, "{evs:#?}");
    let down = evs
        .iter()
        .find(|e| e.kind() == EventKind::PeerDown && e.message.contains(&victim))
        .unwrap_or_else(|| panic!("no peer-down event: {evs:#?}"));
    assert!(
        down.message.contains("no heartbeat for"),
        "{}",
        down.message
    );
    assert!(rounds(&evs).iter().all(|e| e.tasks_done == 3));
}

#[test]
fn f16_compression_halves_the_bytes_and_still_reaches_095() {
    let c = Cluster::start(3, |i| one_core(None, i));
    let url = c.url(0);
    let spec = job_spec(&[(
        "max-attempts = 3",
        "max-attempts = 3\ncompression = \"f16\"",
    )]);
    let evs = rt().block_on(async {
        let id = submit(&url, spec).await;
        watch(&url, &id, |_| {}).await
    });
    let done = evs.last().unwrap();
    assert_eq!(done.kind(), EventKind::Done, "{evs:#?}");
    assert!(done.accuracy >= 0.95, "accuracy {}", done.accuracy);
    // Weights down and the update (as a delta) up, as f16: half of the f32 job's bytes.
    assert_eq!(
        min_bytes_over_three_peers(&rounds(&evs)),
        2 * 2 * 2 * DIGITS_PARAMS
    );
}

#[test]
fn a_model_too_large_for_one_frame_moves_as_chunked_blobs() {
    // 64-2048-1024-10: 2.24M parameters, 8.96 MB of weights, over the 8 MiB frame body, so
    // the weights go to the workers and the updates come back as chunked blobs.
    let c = Cluster::start(3, |i| one_core(None, i));
    let url = c.url(0);
    let spec = job_spec(&[
        ("rounds = 10", "rounds = 2"),
        ("hidden = [128]", "hidden = [2048, 1024]"),
        ("local-epochs = 3", "local-epochs = 1"),
        ("lr = 0.005", "lr = 0.001"),
    ]);
    let evs = rt().block_on(async {
        let id = submit(&url, spec).await;
        watch(&url, &id, |_| {}).await
    });
    assert_eq!(evs.last().unwrap().kind(), EventKind::Done, "{evs:#?}");
    let weights = 4 * (64 * 2048 + 2048 + 2048 * 1024 + 1024 + 1024 * 10 + 10) as u64;
    assert!(weights > 8 * 1024 * 1024);
    for r in rounds(&evs) {
        assert_eq!((r.tasks_done, r.peers), (3, 3), "{r:?}");
        // Down and up for each of the two workers.
        assert!(r.bytes >= 4 * weights, "{} bytes moved in {r:?}", r.bytes);
        assert!(r.accuracy > 0.5, "{r:?}");
    }
    assert_links_measured(&url, 2);
}

#[test]
fn a_swap_one_peer_cannot_load_changes_nothing_anywhere() {
    let c = Cluster::start(2, |i| {
        if i == 1 {
            vec!["--max-plugin-bytes".into(), "1000".into()]
        } else {
            vec![]
        }
    });
    let bytes = fresh_copy("fifo");
    rt().block_on(async {
        let mut ctl = control(&c.url(0)).await;
        let p = ctl
            .install_plugin(req(pb::InstallPluginRequest {
                wasm: bytes,
                ..Default::default()
            }))
            .await
            .unwrap()
            .into_inner();
        let err = ctl
            .swap_plugin(req(pb::SwapPluginRequest {
                kind: "scheduler".into(),
                sha256: p.sha256.clone(),
                order: String::new(),
            }))
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::FailedPrecondition);
        assert!(
            err.message().contains("nothing was swapped")
                && err.message().contains("max-plugin-bytes")
                // Refused from the manifest, before any chunk was fetched.
                && err.message().contains("exceeds the limit of 1000")
                && err.message().contains(&c.hosts[1].peer),
            "{}",
            err.message()
        );
        for i in 0..2 {
            let ps = control(&c.url(i))
                .await
                .list_plugins(req(pb::ListPluginsRequest {}))
                .await
                .unwrap()
                .into_inner();
            assert!(
                ps.plugins.iter().all(|p| !p.active),
                "host {i} switched: {ps:?}"
            );
        }
        // A broken upload is refused with the reason.
        let err = ctl
            .install_plugin(req(pb::InstallPluginRequest {
                wasm: b"\0asm garbage".to_vec(),
                ..Default::default()
            }))
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
        // So is a broken job, naming the field.
        let err = ctl
            .submit_job(req(pb::SubmitJobRequest {
                spec_toml: job_spec(&[("rounds = 10", "rounds = 0")]),
                data_csv: vec![],
            }))
            .await
            .unwrap_err();
        assert!(err.message().contains("rounds"), "{}", err.message());
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
        // And an unknown wire encoding, naming the ones there are.
        let err = ctl
            .submit_job(req(pb::SubmitJobRequest {
                spec_toml: job_spec(&[(
                    "max-attempts = 3",
                    "max-attempts = 3\ncompression = \"zip\"",
                )]),
                data_csv: vec![],
            }))
            .await
            .unwrap_err();
        assert!(
            err.message().contains("zip") && err.message().contains("f16"),
            "{}",
            err.message()
        );
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
        // A job only a local run can do is refused, saying why.
        let err = ctl
            .submit_job(req(pb::SubmitJobRequest {
                spec_toml: job_spec(&[("[data]", "[data]\ncleaning = \"whole\"")]),
                data_csv: vec![],
            }))
            .await
            .unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
        assert!(err.message().contains("local job"), "{}", err.message());
    });
}

#[test]
fn infra_cluster_starts_hosts_that_see_each_other() {
    use std::io::{BufRead, BufReader};
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(infra_cli())
        .args([
            "cluster",
            "-n",
            "2",
            "--grpc-port",
            "0",
            "--heartbeat-ms",
            "200",
            "--token",
            TOKEN,
        ])
        .arg("--data-dir")
        .arg(data.path())
        .arg("--host-bin")
        .arg(env!("CARGO_BIN_EXE_infra-host"))
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut url = None;
    for line in BufReader::new(child.stdout.take().unwrap()).lines() {
        let line = line.unwrap();
        if let Some(rest) = line.trim().strip_prefix("export INFRA_HOST=") {
            url = rest.split_whitespace().next().map(String::from);
        }
        if line.contains("Ctrl-C") {
            break;
        }
    }
    let url = url.expect("the cluster prints where its first host listens");
    let peers = rt().block_on(async {
        control(&url)
            .await
            .list_peers(req(pb::ListPeersRequest {}))
            .await
            .unwrap()
            .into_inner()
    });
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(peers.peers.len(), 1, "{peers:?}");
}

#[test]
fn a_task_that_misses_its_deadline_is_retried_then_the_round_fails_on_quorum() {
    let c = Cluster::start(2, |i| one_core(None, i));
    let url = c.url(0);
    let spec = job_spec(&[
        ("local-epochs = 3", "local-epochs = 2000"),
        ("task-deadline-secs = 60", "task-deadline-secs = 1"),
        ("max-attempts = 3", "max-attempts = 2"),
    ]);
    let evs = rt().block_on(async {
        let id = submit(&url, spec).await;
        watch(&url, &id, |_| {}).await
    });
    let last = evs.last().unwrap();
    assert_eq!(last.kind(), EventKind::Failed, "{evs:#?}");
    assert!(
        last.message.contains("round 1 failed") && last.message.contains("quorum"),
        "{}",
        last.message
    );
    let retries: Vec<_> = evs
        .iter()
        .filter(|e| e.kind() == EventKind::Retry)
        .collect();
    assert!(retries.len() >= 3, "{evs:#?}");
    // Every retry is a missed deadline, or a worker still training a task that missed its
    // deadline refusing the next one for want of room.
    assert!(
        retries
            .iter()
            .all(|e| e.message.contains("missed the task deadline of 1s")
                || e.message
                    .contains("refused: busy: 1 task(s) use 1000 of the 1000 CPU millis")),
        "{retries:#?}"
    );
    let missed = retries
        .iter()
        .filter(|e| e.message.contains("missed the task deadline of 1s"))
        .count();
    assert!(missed >= 2, "{retries:#?}");
}

#[test]
fn a_cancelled_job_stops_and_says_so() {
    let c = Cluster::start(2, |i| one_core(None, i));
    let url = c.url(1);
    let (evs, state) = rt().block_on(async {
        let id = submit(&url, job_spec(&[("rounds = 10", "rounds = 500")])).await;
        let evs = watch(&url, &id, |ev| {
            if ev.kind() == EventKind::Round && ev.round == 2 {
                let url = url.clone();
                let id = id.clone();
                // From another thread: this one is busy streaming.
                std::thread::spawn(move || {
                    rt().block_on(async {
                        control(&url)
                            .await
                            .cancel_job(req(pb::CancelJobRequest { id }))
                            .await
                            .unwrap();
                    })
                })
                .join()
                .unwrap();
            }
        })
        .await;
        let j = control(&url)
            .await
            .get_job(req(pb::GetJobRequest { id }))
            .await
            .unwrap()
            .into_inner();
        (evs, j.state())
    });
    assert_eq!(evs.last().unwrap().kind(), EventKind::Cancelled, "{evs:#?}");
    assert_eq!(state, pb::JobState::Cancelled);
    // Cancelled when round 2 was recorded: the round then running (3), and at worst the one
    // after it when the cancel arrives late, finish; no later round starts.
    let done = rounds(&evs).len();
    assert!(
        (2..=5).contains(&done),
        "{done} rounds after a cancel at round 2"
    );
    let err = rt().block_on(async {
        control(&url)
            .await
            .get_job(req(pb::GetJobRequest {
                id: "no-such-job".into(),
            }))
            .await
            .unwrap_err()
    });
    assert_eq!(err.code(), tonic::Code::NotFound);
}

#[test]
fn a_restarted_coordinator_resumes_from_its_checkpoint() {
    let data = tempfile::tempdir().unwrap();
    let mut c = Cluster::start(2, |i| one_core(Some(&data), i));
    let spec = job_spec(&[
        ("rounds = 10", "rounds = 12"),
        ("quorum = 0.66", "quorum = 1.0"),
    ]);
    let url = c.url(0);
    let peer0 = c.hosts[0].peer.clone();
    let id = rt().block_on(async {
        let id = submit(&url, spec).await;
        // Stop watching (and kill the coordinator) once round 3 is recorded.
        let mut s = control(&url)
            .await
            .watch_job(req(pb::WatchJobRequest { id: id.clone() }))
            .await
            .unwrap()
            .into_inner();
        while let Some(ev) = s.message().await.unwrap() {
            if ev.kind() == EventKind::Round && ev.round == 3 {
                break;
            }
        }
        id
    });
    c.kill(0);
    let boot = c.hosts[1].addr.clone();
    c.spawn(0, Some(&boot), one_core(Some(&data), 0));
    assert_eq!(
        c.hosts[0].peer, peer0,
        "the data folder keeps the host's identity"
    );
    let url = c.url(0);
    let evs = rt().block_on(async { watch(&url, &id, |_| {}).await });
    let at = evs
        .iter()
        .position(|e| e.kind() == EventKind::Resumed)
        .expect("a resumed event");
    let before = rounds(&evs[..at]);
    assert!(
        before.len() >= 3,
        "killed after round 3 was recorded: {evs:#?}"
    );
    assert_eq!(
        evs[at].round,
        before.len() as u32 + 1,
        "it resumes after the last recorded round"
    );
    // Every round exactly once, in order: none repeated, none skipped.
    let r = rounds(&evs);
    let numbers: Vec<u32> = r.iter().map(|e| e.round).collect();
    assert_eq!(numbers, (1..=12).collect::<Vec<_>>(), "{evs:#?}");
    // The first resumed round trains from the checkpoint, not from fresh weights: its loss is
    // far below round 1's (which trained fresh weights with the same seed), and its accuracy
    // keeps up with the last round before the kill.
    let (first, last_before) = (r[before.len()], before.last().unwrap());
    assert!(
        first.loss < r[0].loss / 2.0,
        "{first:?} vs round 1 {:?}",
        r[0]
    );
    assert!(
        first.accuracy >= last_before.accuracy - 0.05,
        "{first:?} vs {last_before:?}"
    );
    assert_eq!(evs.last().unwrap().kind(), EventKind::Done);
    assert!(evs.last().unwrap().accuracy >= 0.95);
}
