//! The compiled-code cache: a second runtime (as after a restart) loads from disk; a corrupt
//! entry is recompiled; a fresh cache key per engine.

use infra_runtime::{CacheSource, Manifest, Runtime};
use std::time::Instant;

#[test]
fn a_restart_loads_compiled_code_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = infra_builtins::find("krum").unwrap().bytes;

    let first = Runtime::builder().cache_dir(dir.path()).build().unwrap();
    let (_, source) = first.load_reporting(bytes, Manifest::default()).unwrap();
    assert_eq!(source, CacheSource::Compiled);
    let (_, source) = first.load_reporting(bytes, Manifest::default()).unwrap();
    assert_eq!(source, CacheSource::Memory);
    let entries: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(entries.len(), 1);

    let restarted = Runtime::builder().cache_dir(dir.path()).build().unwrap();
    let started = Instant::now();
    let (plugin, source) = restarted
        .load_reporting(bytes, Manifest::default())
        .unwrap();
    eprintln!("load from the disk cache: {:?}", started.elapsed());
    assert_eq!(source, CacheSource::Disk);
    assert_eq!(plugin.meta().name, "krum");
}

#[test]
fn a_corrupt_cache_entry_is_recompiled() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = infra_builtins::find("median").unwrap().bytes;
    Runtime::builder()
        .cache_dir(dir.path())
        .build()
        .unwrap()
        .load(bytes)
        .unwrap();
    let entry = std::fs::read_dir(dir.path())
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::write(&entry, b"garbage").unwrap();

    let rt = Runtime::builder().cache_dir(dir.path()).build().unwrap();
    let (plugin, source) = rt.load_reporting(bytes, Manifest::default()).unwrap();
    assert_eq!(source, CacheSource::Compiled);
    assert_eq!(plugin.meta().name, "median");
    assert!(
        std::fs::read(&entry).unwrap().len() > 1000,
        "the entry was replaced"
    );
}
