//! Every kind of bad component is refused with an error that names the problem.

use infra_runtime::{PluginError, PluginKind};
use infra_tests::*;

fn load_err(bytes: &[u8]) -> PluginError {
    runtime().load(bytes).err().expect("must be refused")
}

#[test]
fn not_wasm() {
    let err = load_err(b"#!/bin/sh\necho this is a shell script\n");
    assert!(matches!(err, PluginError::NotWasm), "{err}");
    assert!(err.to_string().contains("not a WebAssembly file"));
    assert!(matches!(load_err(b""), PluginError::NotWasm));
}

#[test]
fn a_core_module_instead_of_a_component() {
    // The smallest valid core module: magic + version 1.
    let err = load_err(b"\0asm\x01\0\0\0");
    assert!(matches!(err, PluginError::CoreModule), "{err}");
    assert!(err
        .to_string()
        .contains("core WebAssembly module, not a component"));
}

#[test]
fn truncated() {
    let fifo = infra_builtins::find("fifo").unwrap().bytes;
    for cut in [5, fifo.len() / 3, fifo.len() - 1] {
        let err = load_err(&fifo[..cut]);
        assert!(
            matches!(err, PluginError::Truncated(_)),
            "cut at {cut}: {err}"
        );
        assert!(err.to_string().starts_with("truncated component"), "{err}");
    }
}

#[test]
fn corrupted_bytes_are_invalid() {
    let mut bytes = infra_builtins::find("fifo").unwrap().bytes.to_vec();
    let mid = bytes.len() / 2;
    bytes[mid..mid + 64].fill(0xff);
    let err = load_err(&bytes);
    assert!(
        matches!(err, PluginError::Invalid(_) | PluginError::Truncated(_)),
        "{err}"
    );
}

#[test]
fn wrong_world() {
    let rt = runtime();
    let fedavg = infra_builtins::find("fedavg").unwrap().bytes;
    let err = rt.load_kind(fedavg, PluginKind::Scheduler).err().unwrap();
    assert_eq!(
        err.to_string(),
        "wrong plugin kind: expected scheduler, found aggregator"
    );
    assert!(matches!(
        err,
        PluginError::WrongKind {
            expected: "scheduler",
            found: "aggregator"
        }
    ));
}

#[test]
fn no_infra_world_at_all() {
    let err = load_err(&guest_bytes("foreign"));
    assert!(matches!(err, PluginError::UnknownWorld(_)), "{err}");
    assert!(
        err.to_string().contains("wasi:cli/run"),
        "names what it does export: {err}"
    );
}

#[test]
fn built_against_an_earlier_contract_version() {
    let err = load_err(&guest_bytes("old-contract"));
    assert!(
        matches!(err, PluginError::OtherContractVersion { .. }),
        "{err}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("infra:plugins/scheduling@0.1.0")
            && msg.contains(&format!("infra:plugins@{}", infra_runtime::WIT_VERSION)),
        "names both versions: {msg}"
    );
}

#[test]
fn missing_export() {
    let err = load_err(&guest_bytes("half"));
    assert!(
        matches!(
            err,
            PluginError::MissingExport {
                kind: "scheduler",
                ..
            }
        ),
        "{err}"
    );
    assert!(
        err.to_string().contains("no export `configure` found"),
        "names the missing function: {err}"
    );
}

#[test]
fn imports_the_host_does_not_provide() {
    let err = load_err(&guest_bytes("greedy"));
    assert!(matches!(err, PluginError::UnsupportedImport(_)), "{err}");
    assert!(
        err.to_string().contains("test:greedy/fetch"),
        "names the import: {err}"
    );
}

#[test]
fn a_bad_manifest_is_refused_with_its_field() {
    let err = infra_runtime::Manifest::from_toml("deadline-ms = 0").unwrap_err();
    assert!(err.to_string().contains("deadline-ms"), "{err}");
    let err = infra_runtime::Manifest::from_toml("[grants]\nnetwork = true").unwrap_err();
    assert!(err.to_string().contains("network"), "{err}");
}
