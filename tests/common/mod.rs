//! Helpers shared by the end-to-end tests: a runtime with a test cache, the built-ins and
//! test components, and small constructors for WIT records.

pub mod byzantine;

use infra_runtime::scheduler::{Node, Pending, Resources, Task, Tier};
use infra_runtime::{Plugin, PluginKind, Runtime};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// A runtime whose compiled-code cache lives in the build's target directory.
pub fn runtime() -> Runtime {
    Runtime::builder()
        .cache_dir(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-component-cache"))
        .build()
        .expect("runtime")
}

/// The built-in `name` of `kind`.
pub fn builtin(rt: &Runtime, name: &str, kind: PluginKind) -> Plugin {
    infra_builtins::load(rt, name, kind).unwrap_or_else(|e| panic!("built-in {name}: {e}"))
}

/// The built-in `name` with a configuration.
pub fn configured(rt: &Runtime, name: &str, kind: PluginKind, config: &[(&str, &str)]) -> Plugin {
    builtin(rt, name, kind)
        .with_config(
            config
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
        .unwrap_or_else(|e| panic!("configure {name}: {e}"))
}

/// Bytes of a component of the guest workspace (test components included).
pub fn guest_bytes(crate_name: &str) -> Vec<u8> {
    let path = infra_builtins::guest_artifact(crate_name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Path of a component built by `scripts/build-examples.sh`.
pub fn example_component(dir: &str, file: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../examples")
        .join(dir)
        .join("build")
        .join(file);
    assert!(
        path.exists(),
        "{} is missing: run scripts/build-examples.sh (the README's test command does)",
        path.display()
    );
    path
}

/// Resources.
pub fn res(cpu_millis: u32, memory_mib: u64, gpus: u32) -> Resources {
    Resources {
        cpu_millis,
        memory_mib,
        gpus,
    }
}

/// An idle server node with all of `capacity` free.
pub fn node(id: &str, capacity: Resources) -> Node {
    Node {
        id: id.into(),
        tier: Tier::Server,
        capacity,
        free: capacity,
        load: 0.0,
        labels: Vec::new(),
        rtt_ms: 1.0,
        bandwidth_bytes_per_s: 100_000_000,
    }
}

/// A task (of job 0) with an id, a priority and a demand.
pub fn task(id: u64, priority: i32, demand: Resources) -> Task {
    Task {
        id,
        job: 0,
        priority,
        demand,
        est_duration_ms: 1000,
        input_bytes: 0,
        attempts: 0,
    }
}

/// One decision's input: `tasks` of job `test` on `nodes`, no input held anywhere.
pub fn pending(tasks: &[Task], nodes: &[Node]) -> Pending {
    Pending {
        jobs: vec!["test".into()],
        tasks: tasks.to_vec(),
        nodes: nodes.to_vec(),
        holdings: Vec::new(),
    }
}

/// `(task id, node id)` pairs of an answer to `pending`, sorted by task.
pub fn pairs(pending: &Pending, a: &[infra_runtime::scheduler::Assignment]) -> Vec<(u64, String)> {
    let mut v: Vec<_> = a
        .iter()
        .map(|a| {
            (
                pending.tasks[a.task as usize].id,
                pending.nodes[a.node as usize].id.clone(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Runs `f` with a `tracing` subscriber that records everything logged on this thread.
pub fn capture_logs<R>(f: impl FnOnce() -> R) -> (R, String) {
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = Buf::default();
    let writer = buf.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    let r = tracing::subscriber::with_default(subscriber, f);
    let text = String::from_utf8_lossy(&buf.0.lock().unwrap()).into_owned();
    (r, text)
}

/// The example `name` (built to `examples/NAME/build/NAME.wasm`), checked to be of `kind` and
/// to call itself `name`.
pub fn load_example(rt: &Runtime, name: &str, kind: PluginKind) -> Plugin {
    let plugin = rt
        .load_file(&example_component(name, &format!("{name}.wasm")))
        .unwrap();
    assert_eq!(plugin.meta().kind, kind, "{name}");
    assert_eq!(plugin.meta().name, name);
    plugin
}
