// Shared build script of the packages whose binaries or tests link libtorch (included by their
// `build.rs`): puts libtorch's lib folder into the rpath, so they run without LD_LIBRARY_PATH
// (torch-sys links libtorch but sets no rpath). `libtorch_cuda` is not linked: the training
// crate loads it at run time when a job may use CUDA (see `infra_train::device`).
fn libtorch_rpath() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    let Ok(dir) = std::env::var("LIBTORCH") else {
        return;
    };
    let lib = std::path::Path::new(&dir).join("lib");
    let lib = std::fs::canonicalize(&lib).unwrap_or(lib);
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
}
