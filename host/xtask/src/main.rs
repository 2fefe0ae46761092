//! `cargo xtask <task>`: the README's commands. Each task first sets up what it needs on a
//! fresh machine (the wasm32-wasip2 target; libtorch 2.11.0 from PyPI into `.cache/`; for
//! tests, the Python and JavaScript example plugins), then runs cargo with the project's one
//! build profile (release).
//!
//! - `train [ARGS]`: the main job, `infra train` (digits on embedded defaults);
//! - `demo [ARGS]`: the built-in plugins at work on sample data (`infra demo`);
//! - `test [ARGS]`: every test of the workspace;
//! - `bench [ARGS]`: the Wasm-vs-native benchmarks of `BENCHMARKS.md`;
//! - `setup`: only the set-up.

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

const WASM_TARGET: &str = "wasm32-wasip2";

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let result = match task.as_str() {
        "setup" => setup(&root, false),
        "train" | "demo" => setup(&root, false).and_then(|_| {
            // Not `-q`: the first build takes minutes and cargo's progress shows it going.
            const INFRA: [&str; 7] = [
                "run",
                "--release",
                "-p",
                "infra-cli",
                "--bin",
                "infra",
                "--",
            ];
            say_first_build(&root);
            cargo(&root, &[&INFRA[..], &[task.as_str()]].concat(), &rest)
        }),
        "test" => setup(&root, true)
            .and_then(|_| cargo(&root, &["test", "--release", "--workspace"], &rest)),
        "bench" => setup(&root, false).and_then(|_| {
            cargo(
                &root,
                &["run", "--release", "-p", "infra-bench", "--"],
                &rest,
            )
        }),
        _ => Err("usage: cargo xtask <train|demo|test|bench|setup> [ARGS]".into()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xtask: {e}");
            ExitCode::FAILURE
        }
    }
}

fn setup(root: &Path, examples: bool) -> Result<(), String> {
    ensure_wasm_target()?;
    // `.cargo/config.toml` points LIBTORCH at .cache/libtorch unless the user set their own.
    let libtorch = std::env::var_os("LIBTORCH").map(PathBuf::from);
    if !libtorch.is_some_and(|d| d.join("lib/libtorch_cpu.so").exists()) {
        run(Command::new("bash").arg(root.join("scripts/setup-libtorch.sh")))?;
    }
    if examples {
        run(Command::new("bash").arg(root.join("scripts/build-examples.sh")))?;
    }
    Ok(())
}

/// Says, before a build that has never run here, that it takes several minutes.
fn say_first_build(root: &Path) {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"));
    if !target.join("release/infra").exists() {
        eprintln!(
            "xtask: the first run builds infra in release mode (wasmtime, libp2p, the plugins, \
             the bindings to libtorch): several minutes on a few cores, once; later runs start \
             in seconds"
        );
    }
}

fn ensure_wasm_target() -> Result<(), String> {
    let sysroot = Command::new("rustc")
        .args(["--print", "sysroot"])
        .output()
        .map_err(|e| format!("rustc: {e}"))?;
    let sysroot = PathBuf::from(String::from_utf8_lossy(&sysroot.stdout).trim());
    if sysroot.join("lib/rustlib").join(WASM_TARGET).exists() {
        return Ok(());
    }
    eprintln!("xtask: installing the {WASM_TARGET} target (plugins are built for it)");
    run(Command::new("rustup").args(["target", "add", WASM_TARGET]))
        .map_err(|e| format!("{e}; install the target by hand: `rustup target add {WASM_TARGET}`"))
}

fn cargo(root: &Path, args: &[&str], rest: &[String]) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    run(Command::new(cargo).current_dir(root).args(args).args(rest))
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let status = cmd.status().map_err(|e| format!("{cmd:?}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{cmd:?} failed ({status})"))
    }
}
