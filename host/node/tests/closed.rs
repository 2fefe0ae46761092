//! A closed cluster of real `infra-host` processes on 127.0.0.1, set up with the `infra` CLI
//! (`infra key new`, `infra member add`, `infra plugin sign`, `infra plugin swap --key`):
//! strangers and members of another cluster never join it, a host refuses to listen beyond
//! loopback without membership, and plugins and swaps need an operator's signature on every
//! host. Every wait is on an event the hosts print or stream; nothing sleeps.

mod common;

use common::{control, fresh_copy, infra, job_spec, req, rt, Cluster, TOKEN};
use infra_api::pb;
use std::path::{Path, PathBuf};

/// An operator key made with `infra key new`; returns its path and public key.
fn operator(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(format!("{name}.key"));
    let (ok, out, err) = infra(&["key", "new", "--out", key.to_str().unwrap()]);
    assert!(ok, "{err}");
    (key, out.trim().to_string())
}

/// A host folder admitted into `cluster` by `key` with `infra member add`.
fn member(key: &Path, cluster: &str, dir: &Path) -> PathBuf {
    let (ok, _, err) = infra(&[
        "member",
        "add",
        "--key",
        key.to_str().unwrap(),
        "--cluster",
        cluster,
        "--data-dir",
        dir.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    dir.to_path_buf()
}

fn data_dir(d: &Path) -> Vec<String> {
    vec!["--data-dir".into(), d.display().to_string()]
}

fn peers_of(url: &str) -> Vec<String> {
    rt().block_on(async {
        let mut ids: Vec<String> = control(url)
            .await
            .list_peers(req(pb::ListPeersRequest {}))
            .await
            .unwrap()
            .into_inner()
            .peers
            .into_iter()
            .map(|p| p.peer_id)
            .collect();
        ids.sort();
        ids
    })
}

#[test]
fn strangers_and_other_clusters_never_join_a_closed_cluster() {
    let tmp = tempfile::tempdir().unwrap();
    let (op, _) = operator(tmp.path(), "op");
    let dirs: Vec<PathBuf> = (0..3)
        .map(|i| member(&op, "lab", &tmp.path().join(format!("h{i}"))))
        .collect();
    let mut c = Cluster::start(3, |i| data_dir(&dirs[i]));
    let boot = c.hosts[0].addr.clone();
    // A stranger with no credential, a member of another cluster under the same operator,
    // and a host admitted into "lab" by another operator, all pointed at host 0.
    let (other_op, _) = operator(tmp.path(), "other");
    let prod = member(&op, "prod", &tmp.path().join("prod"));
    let forged = member(&other_op, "lab", &tmp.path().join("forged"));
    c.spawn(3, Some(&boot), vec![]);
    c.spawn(4, Some(&boot), data_dir(&prod));
    c.spawn(5, Some(&boot), data_dir(&forged));
    let outsiders: Vec<String> = (3..6).map(|i| c.hosts[i].peer.clone()).collect();

    // A job runs to its end on the members while the outsiders keep trying.
    let spec = job_spec(&[("rounds = 10", "rounds = 2")]);
    let url = c.url(0);
    rt().block_on(async {
        let mut ctl = control(&url).await;
        let job = ctl
            .submit_job(req(pb::SubmitJobRequest {
                spec_toml: spec,
                data_csv: vec![],
            }))
            .await
            .unwrap()
            .into_inner();
        let mut events = ctl
            .watch_job(req(pb::WatchJobRequest { id: job.id }))
            .await
            .unwrap()
            .into_inner();
        let mut last = None;
        while let Some(e) = events.message().await.unwrap() {
            last = Some(e);
        }
        let last = last.unwrap();
        assert_eq!(last.kind(), pb::EventKind::Done, "{last:?}");
    });
    // No member has an outsider as a peer (so none got a task or a blob: the scheduler sees
    // only peers), and no outsider has any peer at all.
    let members: Vec<String> = (0..3).map(|i| c.hosts[i].peer.clone()).collect();
    for i in 0..3 {
        let mut want: Vec<String> = members
            .iter()
            .filter(|p| **p != members[i])
            .cloned()
            .collect();
        want.sort();
        assert_eq!(
            peers_of(&c.url(i)),
            want,
            "host {i}; outsiders {outsiders:?}"
        );
    }
    for i in 3..6 {
        assert!(peers_of(&c.url(i)).is_empty(), "outsider {i} sees peers");
        assert!(
            c.seen.get(&i).is_none_or(|s| s.is_empty()),
            "outsider {i} heard {:?}",
            c.seen[&i]
        );
    }
}

#[test]
fn a_host_without_membership_listens_only_on_loopback_unless_told_open() {
    let run = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_infra-host"))
            .args([
                "--listen",
                "/ip4/0.0.0.0/tcp/0",
                "--grpc",
                "127.0.0.1:0",
                "--no-mdns",
            ])
            .args(extra)
            .env("INFRA_TOKEN", TOKEN)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let out = run(&[]).wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("without membership") && err.contains("--open"),
        "{err}"
    );
    // With --open it starts (and says it is open): it prints that it listens.
    let mut open = run(&["--open"]);
    use std::io::BufRead;
    let stdout = std::io::BufReader::new(open.stdout.take().unwrap());
    let listening = stdout
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("\"listening\""));
    let _ = open.kill();
    let _ = open.wait();
    assert!(listening);
    // A token file others can read is refused; one only its owner reads is taken.
    let tmp = tempfile::tempdir().unwrap();
    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, TOKEN).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_infra-host"))
        .args([
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--grpc",
            "127.0.0.1:0",
            "--token-file",
        ])
        .arg(&token_file)
        .env_remove("INFRA_TOKEN")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("chmod 600"), "{err}");
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut owner_only = std::process::Command::new(env!("CARGO_BIN_EXE_infra-host"))
        .args([
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--grpc",
            "127.0.0.1:0",
            "--no-mdns",
            "--token-file",
        ])
        .arg(&token_file)
        .env_remove("INFRA_TOKEN")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let serving = std::io::BufReader::new(owner_only.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok)
        .any(|l| l.contains("\"grpc\""));
    let _ = owner_only.kill();
    let _ = owner_only.wait();
    assert!(serving);
    // A token on the command line is not taken (it would show in `ps`).
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_infra-host"))
        .args(["--token", TOKEN])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--token"));
}

#[test]
fn plugins_and_swaps_need_an_operator_signature_on_every_host() {
    let tmp = tempfile::tempdir().unwrap();
    let (op, op_pub) = operator(tmp.path(), "op");
    let (other, other_pub) = operator(tmp.path(), "other");
    let dirs: Vec<PathBuf> = (0..3)
        .map(|i| member(&op, "lab", &tmp.path().join(format!("h{i}"))))
        .collect();
    // Host 0 also trusts the other key; hosts 1 and 2 do not.
    let c = Cluster::start(3, |i| {
        let mut a = data_dir(&dirs[i]);
        if i == 0 {
            a.extend(["--trust".to_string(), other_pub.clone()]);
        }
        a
    });
    let wasm = tmp.path().join("fifo.wasm");
    std::fs::write(&wasm, fresh_copy("fifo")).unwrap();
    let wasm_s = wasm.to_str().unwrap();
    let sha = infra_runtime::sha256_hex(&std::fs::read(&wasm).unwrap());
    let none_active = |why: &str| {
        for i in 0..3 {
            let ps = rt().block_on(async {
                control(&c.url(i))
                    .await
                    .list_plugins(req(pb::ListPluginsRequest {}))
                    .await
                    .unwrap()
                    .into_inner()
            });
            assert!(
                ps.plugins.iter().all(|p| !p.active),
                "{why}: host {i}: {ps:?}"
            );
        }
    };
    let install = |url: &str| {
        let signature = std::fs::read_to_string(infra_trust::PluginSignature::path_for(&wasm))
            .unwrap_or_default();
        rt().block_on(async {
            control(url)
                .await
                .install_plugin(req(pb::InstallPluginRequest {
                    wasm: std::fs::read(&wasm).unwrap(),
                    signature,
                }))
                .await
        })
    };

    // Unsigned: refused, naming the plugin and why.
    let e = install(&c.url(0)).unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    assert!(
        e.message().contains("fifo") && e.message().contains("not signed"),
        "{}",
        e.message()
    );

    // Signed by the other key: host 0 takes it, host 1 refuses it...
    let (ok, out, err) = infra(&["plugin", "sign", wasm_s, "--key", other.to_str().unwrap()]);
    assert!(ok && out.contains(&other_pub), "{out}{err}");
    let e = install(&c.url(1)).unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    assert!(
        e.message().contains("not a trusted operator key"),
        "{}",
        e.message()
    );
    let p = install(&c.url(0)).unwrap().into_inner();
    assert_eq!(p.signer, other_pub);
    // ...and so, with a valid order, a swap through host 0 changes nothing anywhere: hosts
    // 1 and 2 refuse the plugin when they fetch it.
    let url0 = c.url(0);
    let (ok, _, err) = infra(&[
        "plugin",
        "swap",
        "--kind",
        "scheduler",
        wasm_s,
        "--key",
        op.to_str().unwrap(),
        "--host",
        &url0,
    ]);
    assert!(!ok);
    assert!(
        err.contains("nothing was swapped")
            && err.contains(&c.hosts[1].peer)
            && err.contains(&c.hosts[2].peer)
            && err.contains("not a trusted operator key"),
        "{err}"
    );
    none_active("a plugin two hosts do not trust");

    // Signed by the cluster's operator: installs everywhere, but a swap needs a signed order.
    let (ok, _, err) = infra(&["plugin", "sign", wasm_s, "--key", op.to_str().unwrap()]);
    assert!(ok, "{err}");
    let (ok, out, _) = infra(&["plugin", "check", wasm_s]);
    assert!(ok && out.contains(&format!("by {op_pub}")), "{out}");
    let url1 = c.url(1);
    let swap = |order: String| {
        rt().block_on(async {
            control(&url1)
                .await
                .swap_plugin(req(pb::SwapPluginRequest {
                    kind: "scheduler".into(),
                    sha256: sha.clone(),
                    order,
                }))
                .await
        })
    };
    install(&url1).unwrap();
    let e = swap(String::new()).unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    assert!(
        e.message().contains("needs an order signed"),
        "{}",
        e.message()
    );
    let forged = infra_trust::SwapOrder::issue(
        &infra_trust::OperatorKey::load(&other).unwrap(),
        "scheduler",
        &sha,
    );
    let e = swap(forged.to_toml()).unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    assert!(
        e.message().contains("not a trusted operator key"),
        "{}",
        e.message()
    );
    none_active("unsigned and wrongly signed orders");

    // The operator's order swaps it on every host; the same order again is not taken.
    let order = infra_trust::SwapOrder::issue(
        &infra_trust::OperatorKey::load(&op).unwrap(),
        "scheduler",
        &sha,
    );
    let out = swap(order.to_toml()).unwrap().into_inner();
    assert_eq!(out.peers.len(), 3);
    assert!(out.peers.iter().all(|p| p.ok), "{out:?}");
    for i in 0..3 {
        let ps = rt().block_on(async {
            control(&c.url(i))
                .await
                .list_plugins(req(pb::ListPluginsRequest {}))
                .await
                .unwrap()
                .into_inner()
        });
        assert!(
            ps.plugins.iter().any(|p| p.active && p.sha256 == sha),
            "host {i}: {ps:?}"
        );
    }
    let e = swap(order.to_toml()).unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied);
    assert!(
        e.message().contains("not after the last order"),
        "{}",
        e.message()
    );
}

#[test]
fn the_control_plane_beyond_loopback_serves_only_tls_and_limits_failed_logins() {
    use std::io::BufRead;
    let start = |extra: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_infra-host"))
            .args([
                "--listen",
                "/ip4/127.0.0.1/tcp/0",
                "--no-mdns",
                "--grpc",
                "0.0.0.0:0",
            ])
            .args(extra)
            .env("INFRA_TOKEN", TOKEN)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    // No certificate and nowhere to keep one: it does not start.
    let out = start(&[]).wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("in clear"), "{err}");

    // With a data folder it makes a self-signed certificate and serves TLS.
    let tmp = tempfile::tempdir().unwrap();
    let mut host = start(&["--data-dir", tmp.path().to_str().unwrap()]);
    let mut lines = std::io::BufReader::new(host.stdout.take().unwrap()).lines();
    let grpc = lines
        .by_ref()
        .map_while(Result::ok)
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(&l).ok())
        .find(|v| v["event"] == "grpc")
        .unwrap();
    // The host keeps printing events; a closed pipe would stop it.
    std::thread::spawn(move || lines.for_each(drop));
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _host = Kill(host);
    assert_eq!(grpc["tls"], true, "{grpc}");
    let cert = grpc["cert"].as_str().unwrap().to_string();
    let port = grpc["addr"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .to_string();
    let https = format!("https://127.0.0.1:{port}");
    let (ok, out, err) = infra(&["peers", "--host", &https, "--ca", &cert]);
    assert!(ok && out.contains("sees 0 peer(s)"), "{out}{err}");
    // Plain text to it gets nowhere; the CLI sends no token in clear beyond loopback.
    let (ok, _, _) = infra(&["peers", "--host", &format!("http://127.0.0.1:{port}")]);
    assert!(!ok);
    let (ok, _, err) = infra(&["peers", "--host", "http://192.0.2.1:7070"]);
    assert!(
        !ok && err.contains("refusing to send the token in clear"),
        "{err}"
    );

    // Failed logins from one address are limited: after the allowance, even a right token
    // from that address waits out the window.
    rt().block_on(async {
        let pem = std::fs::read_to_string(&cert).unwrap();
        let ch = tonic::transport::Channel::from_shared(https.clone())
            .unwrap()
            .tls_config(
                tonic::transport::ClientTlsConfig::new()
                    .ca_certificate(tonic::transport::Certificate::from_pem(pem)),
            )
            .unwrap()
            .connect()
            .await
            .unwrap();
        let ctl = infra_api::pb::control_client::ControlClient::new(ch);
        let call = |auth: String| {
            let mut ctl = ctl.clone();
            async move {
                ctl.list_peers(common::authed(pb::ListPeersRequest {}, &auth))
                    .await
                    .map(|_| ())
            }
        };
        call(infra_api::bearer(TOKEN)).await.unwrap();
        for _ in 0..infra_api::MAX_FAILED_AUTH {
            let e = call(infra_api::bearer("not-the-token")).await.unwrap_err();
            assert_eq!(e.code(), tonic::Code::Unauthenticated);
        }
        let e = call(infra_api::bearer("not-the-token")).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
        let e = call(infra_api::bearer(TOKEN)).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
    });
}
