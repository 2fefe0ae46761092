//! Builds the guest workspace (`plugins/`, target wasm32-wasip2, release) and generates the
//! table of built-in components that `lib.rs` embeds. The guest workspace has its own
//! lockfile and target directory (`plugins/target`), so this does not fight the outer build.

use std::env;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.join("../..").canonicalize().unwrap();
    let plugins = root.join("plugins");
    for watched in [
        "builtin",
        "hostile",
        "policies",
        "Cargo.toml",
        "Cargo.lock",
        ".cargo",
    ] {
        println!("cargo:rerun-if-changed={}", plugins.join(watched).display());
    }
    println!("cargo:rerun-if-changed={}", root.join("sdk").display());
    println!("cargo:rerun-if-changed={}", root.join("wit").display());

    build_guests(&plugins);
    let artifacts = plugins.join("target/wasm32-wasip2/release");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());

    let mut table = String::from("/// Built-in plugins: (name, world, component bytes).\n");
    table.push_str("pub static BUILTINS: &[Builtin] = &[\n");
    let mut names: Vec<_> = std::fs::read_dir(plugins.join("builtin"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    for name in &names {
        let cargo_toml =
            std::fs::read_to_string(plugins.join("builtin").join(name).join("Cargo.toml")).unwrap();
        let world = ["scheduler", "cleaner", "aggregator"]
            .into_iter()
            .find(|w| cargo_toml.contains(&format!("infra built-in {w}:")))
            .unwrap_or_else(|| panic!("plugins/builtin/{name}/Cargo.toml: description must say `infra built-in <world>: {name}`"));
        let file = artifacts.join(format!("{}.wasm", name.replace('-', "_")));
        let copy = out.join(format!("{name}.wasm"));
        std::fs::copy(&file, &copy).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        writeln!(
            table,
            "    Builtin {{ name: {name:?}, world: {world:?}, bytes: include_bytes!({:?}) }},",
            copy.display().to_string()
        )
        .unwrap();
    }
    table.push_str("];\n");
    writeln!(
        table,
        "/// Where the guest workspace's release components are (test components included).\npub const GUEST_ARTIFACTS: &str = {:?};",
        artifacts.display().to_string()
    )
    .unwrap();
    std::fs::write(out.join("builtins.rs"), table).unwrap();
}

fn build_guests(plugins: &Path) {
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(plugins).args([
        "build",
        "--release",
        "--workspace",
        "--target",
        "wasm32-wasip2",
    ]);
    // The outer build's settings must not leak into the guest build (target dir, host
    // rustflags, profile): drop CARGO_* except the ones about where cargo lives and the
    // jobserver, so both builds share the CPU fairly.
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        let keep = matches!(key.as_str(), "CARGO_HOME" | "CARGO_MAKEFLAGS")
            || key.starts_with("CARGO_NET")
            || key.starts_with("CARGO_HTTP")
            || key.starts_with("CARGO_REGISTR");
        if (key.starts_with("CARGO_") && !keep)
            || matches!(
                key.as_str(),
                "RUSTFLAGS"
                    | "RUSTC_WORKSPACE_WRAPPER"
                    | "TARGET"
                    | "HOST"
                    | "OUT_DIR"
                    | "PROFILE"
                    | "OPT_LEVEL"
                    | "DEBUG"
                    | "RUSTC"
                    | "RUSTDOC"
            )
        {
            cmd.env_remove(&key);
        }
    }
    let output = cmd.output().expect("run cargo for the guest workspace");
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if stderr.contains("wasm32-wasip2")
            && stderr.contains("target may not be installed")
        {
            "\nhint: run `rustup target add wasm32-wasip2` (the README's commands do it for you)"
        } else {
            ""
        };
        eprintln!("building the guest plugins (plugins/) failed:\n{stderr}{hint}");
        std::process::exit(1);
    }
}
