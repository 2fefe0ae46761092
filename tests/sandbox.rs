//! A hostile plugin against the sandbox: deadlines, the memory cap, denied capabilities
//! (and the same calls succeeding once a manifest grants them), recovery after a trap, and
//! guest output reaching the log.

use infra_runtime::cleaner::Batch;
use infra_runtime::{Grants, Instance, Limits, Manifest, PluginError, PreopenGrant};
use infra_tests::*;
use std::time::{Duration, Instant};

fn hostile(manifest: Manifest) -> Instance {
    runtime()
        .load_with(&guest_bytes("hostile"), manifest)
        .unwrap()
        .instance()
}

/// Runs one action; `Ok(outcome)` is the plugin's own `ok:...` / `err:...` answer.
fn act(inst: &mut Instance, action: &str) -> Result<String, PluginError> {
    let b = Batch {
        columns: vec![action.into()],
        features: vec![],
        labels: vec![],
    };
    inst.apply(&b).map(|(out, _)| out.columns[0].clone())
}

fn limits(deadline_ms: u64, memory_mib: usize) -> Manifest {
    Manifest {
        limits: Limits {
            deadline: Duration::from_millis(deadline_ms),
            memory_bytes: memory_mib << 20,
        },
        grants: Grants::default(),
    }
}

#[test]
fn an_infinite_loop_is_stopped_within_twice_its_deadline() {
    for deadline_ms in [100, 300] {
        let mut inst = hostile(limits(deadline_ms, 64));
        act(&mut inst, "count").unwrap(); // instantiate outside the timed call
        let started = Instant::now();
        let err = act(&mut inst, "spin").unwrap_err();
        let took = started.elapsed();
        assert!(matches!(err, PluginError::Deadline { .. }), "{err}");
        assert!(
            took >= Duration::from_millis(deadline_ms),
            "stopped early: {took:?}"
        );
        assert!(
            took < Duration::from_millis(2 * deadline_ms),
            "stopped late: {took:?}"
        );
    }
}

#[test]
fn the_default_deadline_is_one_second() {
    let mut inst = hostile(Manifest::default());
    let started = Instant::now();
    let err = act(&mut inst, "spin").unwrap_err();
    assert!(
        matches!(err, PluginError::Deadline { deadline, .. } if deadline == Duration::from_secs(1)),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[test]
fn a_memory_bomb_is_stopped_at_the_cap() {
    let mut inst = hostile(limits(5000, 48));
    let err = act(&mut inst, "bomb").unwrap_err();
    match err {
        PluginError::MemoryLimit { limit_bytes, .. } => assert_eq!(limit_bytes, 48 << 20),
        other => panic!("expected a memory-limit error, got {other}"),
    }
    // The default cap is 256 MiB.
    let err = act(&mut hostile(Manifest::default()), "bomb").unwrap_err();
    assert!(
        matches!(err, PluginError::MemoryLimit { limit_bytes, .. } if limit_bytes == 256 << 20),
        "{err}"
    );
}

#[test]
fn files_are_denied_unless_a_directory_is_granted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("secret.txt"), "twelve bytes").unwrap();
    let host_path = dir.path().join("secret.txt");

    let mut inst = hostile(Manifest::default());
    let denied = act(&mut inst, &format!("read:{}", host_path.display())).unwrap();
    assert!(denied.starts_with("err:"), "{denied}");
    let denied = act(&mut inst, "read:/etc/passwd").unwrap();
    assert!(denied.starts_with("err:"), "{denied}");

    let granted = Manifest {
        grants: Grants {
            preopens: vec![PreopenGrant {
                host: dir.path().into(),
                guest: "/data".into(),
                writable: false,
            }],
            ..Grants::default()
        },
        ..Manifest::default()
    };
    let mut inst = hostile(granted);
    assert_eq!(act(&mut inst, "read:/data/secret.txt").unwrap(), "ok:12");
    assert!(
        act(&mut inst, "read:/etc/passwd")
            .unwrap()
            .starts_with("err:"),
        "only the granted directory"
    );
}

#[test]
fn sockets_are_denied_unless_the_address_is_granted() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();

    let mut inst = hostile(Manifest::default());
    let denied = act(&mut inst, &format!("connect:{addr}")).unwrap();
    assert!(
        denied.starts_with("err:") && denied.contains("access-denied"),
        "{denied}"
    );

    let granted = Manifest {
        grants: Grants {
            connect: vec![addr],
            ..Grants::default()
        },
        ..Manifest::default()
    };
    let mut inst = hostile(granted);
    assert_eq!(
        act(&mut inst, &format!("connect:{addr}")).unwrap(),
        "ok:connected"
    );
    let other = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let denied = act(&mut inst, &format!("connect:{other}")).unwrap();
    assert!(
        denied.contains("access-denied"),
        "only the granted address: {denied}"
    );
}

#[test]
fn the_host_environment_is_invisible_unless_granted() {
    assert!(std::env::vars().count() > 0);
    assert_eq!(
        act(&mut hostile(Manifest::default()), "env").unwrap(),
        "ok:0"
    );
    let granted = Manifest {
        grants: Grants {
            env: vec!["PATH".into()],
            ..Grants::default()
        },
        ..Manifest::default()
    };
    assert_eq!(act(&mut hostile(granted), "env").unwrap(), "ok:1");
}

#[test]
fn a_trap_is_followed_by_a_fresh_instance() {
    let mut inst = hostile(Manifest::default());
    assert_eq!(act(&mut inst, "count").unwrap(), "ok:1");
    assert_eq!(act(&mut inst, "count").unwrap(), "ok:2");
    let err = act(&mut inst, "panic").unwrap_err();
    assert!(matches!(err, PluginError::Trap { .. }), "{err}");
    // The next call succeeds, on a new instance: its state starts over.
    assert_eq!(act(&mut inst, "count").unwrap(), "ok:1");
    assert_eq!(inst.replacements(), 1);
    // Same after a deadline and after a memory bomb.
    let mut inst = hostile(limits(100, 32));
    assert!(act(&mut inst, "spin").is_err());
    assert_eq!(act(&mut inst, "count").unwrap(), "ok:1");
    assert!(act(&mut inst, "bomb").is_err());
    assert_eq!(act(&mut inst, "count").unwrap(), "ok:1");
}

#[test]
fn guest_output_and_log_records_reach_the_host_log_tagged_with_the_plugin() {
    let (_, logs) = capture_logs(|| {
        let mut inst = hostile(Manifest::default());
        act(&mut inst, "print:hello from the sandbox").unwrap();
        act(&mut inst, "log:a structured record").unwrap();
    });
    let line = logs
        .lines()
        .find(|l| l.contains("hello from the sandbox"))
        .expect(&logs);
    assert!(
        line.contains("plugin=\"hostile\"") && line.contains("stream=\"stdout\""),
        "{line}"
    );
    let line = logs
        .lines()
        .find(|l| l.contains("a structured record"))
        .expect(&logs);
    assert!(
        line.contains("INFO") && line.contains("plugin=\"hostile\""),
        "{line}"
    );
}
