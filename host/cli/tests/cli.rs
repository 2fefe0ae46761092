//! The real `infra` binary: `plugin check | list | export` and `demo`.

use std::path::Path;
use std::process::{Command, Output};

fn infra(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_infra"))
        .args(args)
        .env(
            "INFRA_CACHE_DIR",
            Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-cache"),
        )
        .output()
        .expect("run infra")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A failed check: non-zero exit and exactly one line on stderr, containing `needle`.
fn assert_refused(file: &Path, needle: &str) {
    let o = infra(&["plugin", "check", file.to_str().unwrap()]);
    assert!(!o.status.success(), "{} was accepted", file.display());
    let err = stderr(&o);
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err}");
    assert_eq!(err.matches(needle).count(), 1, "says it once: {err}");
    assert!(
        err.contains(&file.display().to_string()),
        "names the file: {err}"
    );
}

#[test]
fn export_then_check_every_builtin() {
    let dir = tempfile::tempdir().unwrap();
    for b in infra_builtins::BUILTINS {
        let file = dir.path().join(format!("{}.wasm", b.name));
        let o = infra(&["plugin", "export", b.name, "-o", file.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        let o = infra(&["plugin", "check", file.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        let out = stdout(&o);
        assert!(out.contains(&format!("kind:     {}", b.world)), "{out}");
        assert!(out.contains(&format!("name:     {}", b.name)), "{out}");
        let sha = infra_runtime_sha(b.bytes);
        assert!(out.contains(&format!("sha256:   {sha}")), "{out}");
        assert!(
            out.contains("exports:") && out.contains("infra:plugins/"),
            "{out}"
        );
        assert!(out.contains("grants:   none"), "{out}");
    }
}

/// sha256 computed outside infra (coreutils), so the check is independent of the runtime.
fn infra_runtime_sha(bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("x");
    std::fs::write(&f, bytes).unwrap();
    let o = Command::new("sha256sum")
        .arg(&f)
        .output()
        .expect("sha256sum");
    stdout(&o).split_whitespace().next().unwrap().to_string()
}

#[test]
fn check_refuses_broken_files_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.wasm");
    std::fs::write(&text, "hello").unwrap();
    assert_refused(&text, "not a WebAssembly file");

    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    assert_refused(&core, "core WebAssembly module, not a component");

    let fifo = infra_builtins::find("fifo").unwrap().bytes;
    let cut = dir.path().join("cut.wasm");
    std::fs::write(&cut, &fifo[..fifo.len() / 2]).unwrap();
    assert_refused(&cut, "truncated component");

    assert_refused(
        &infra_builtins::guest_artifact("greedy"),
        "imports what the host does not provide",
    );
    assert_refused(&infra_builtins::guest_artifact("half"), "missing an export");
    assert_refused(
        &infra_builtins::guest_artifact("foreign"),
        "exports none of the infra plugin worlds",
    );
    assert_refused(&dir.path().join("absent.wasm"), "No such file");
}

#[test]
fn check_reads_the_manifest_next_to_the_component() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("median.wasm");
    std::fs::write(&file, infra_builtins::find("median").unwrap().bytes).unwrap();
    std::fs::write(
        dir.path().join("median.toml"),
        "deadline-ms = 250\nmemory-mib = 32\n",
    )
    .unwrap();
    let out = stdout(&infra(&["plugin", "check", file.to_str().unwrap()]));
    assert!(out.contains("deadline 250ms, memory 32 MiB"), "{out}");
    std::fs::write(dir.path().join("median.toml"), "deadline = 250\n").unwrap();
    assert_refused(&file, "unknown field `deadline`");
}

#[test]
fn list_shows_every_builtin_with_kind_and_sha256() {
    let o = infra(&["plugin", "list"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for b in infra_builtins::BUILTINS {
        let row = out
            .lines()
            .find(|l| l.contains(&format!(" {} ", b.name)))
            .unwrap_or_else(|| panic!("{} missing:\n{out}", b.name));
        assert!(row.contains(b.world), "{row}");
        assert!(
            row.split_whitespace()
                .any(|w| w.len() == 64 && w.chars().all(|c| c.is_ascii_hexdigit())),
            "{row}"
        );
    }
    assert_eq!(infra_builtins::BUILTINS.len(), 13);
}

#[test]
fn export_of_an_unknown_name_lists_the_builtins() {
    let o = infra(&["plugin", "export", "fedavgg", "-o", "/tmp/never.wasm"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("no built-in plugin `fedavgg`") && stderr(&o).contains("fedavg"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn demo_runs_every_builtin() {
    let o = infra(&["demo", "--nodes", "20", "--tasks", "100"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for b in infra_builtins::BUILTINS {
        assert!(
            out.contains(b.name),
            "{} missing from the demo:\n{out}",
            b.name
        );
    }
}

#[test]
fn train_runs_the_embedded_digits_job_and_reports_json() {
    let dir = tempfile::tempdir().unwrap();
    let o = infra(&[
        "train",
        "--json",
        "--checkpoint-dir",
        dir.path().to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report: serde_json::Value = serde_json::from_str(&stdout(&o)).expect("JSON on stdout");
    let acc = report["final_accuracy"].as_f64().unwrap();
    assert!(acc >= 0.96, "accuracy {acc}");
    for key in [
        "rounds",
        "wall_seconds",
        "samples_per_second",
        "workers",
        "parameter_bytes_moved",
        "speedup_vs_one_worker",
        "utilisation",
        "cleaning",
    ] {
        assert!(!report[key].is_null(), "{key} missing from {report}");
    }
    assert!(dir.path().join("digits.safetensors").exists());
}

#[test]
fn train_refuses_a_broken_job_file_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.toml");
    std::fs::write(&job, "name = \"x\"\nrounds = \"many\"\n").unwrap();
    let o = infra(&["train", job.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("job.toml") && err.contains("rounds"), "{err}");

    // A plugin file that is not there: named once, with the cause once.
    let digits = include_str!("../../../examples/digits.toml");
    assert!(digits.contains("plugin = \"fedavg\""));
    std::fs::write(
        &job,
        digits.replace("plugin = \"fedavg\"", "plugin = \"nowhere/agg.wasm\""),
    )
    .unwrap();
    let o = infra(&["train", job.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert_eq!(err.matches("nowhere/agg.wasm").count(), 1, "{err}");
    assert_eq!(err.matches("No such file").count(), 1, "{err}");
}
