//! Puts libtorch's lib folder into the binary's rpath, so `infra` runs without
//! LD_LIBRARY_PATH (torch-sys links libtorch but does not set an rpath).
fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if let Ok(dir) = std::env::var("LIBTORCH") {
        let lib = std::fs::canonicalize(std::path::Path::new(&dir).join("lib"))
            .unwrap_or_else(|_| std::path::Path::new(&dir).join("lib"));
        println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    }
}
