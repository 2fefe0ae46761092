//! Compiles `proto/` with protox (no protoc needed) and generates the tonic code, plus the
//! file descriptor set that the reflection service serves (so `grpcurl` works).
include!("../build-support/libtorch_rpath.rs");

fn main() {
    // The control plane links the training crate, so its test binary needs libtorch's rpath.
    libtorch_rpath();
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(["infra/v2/infra.proto"], ["proto"])
        .expect("compile proto/infra/v2/infra.proto");
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").unwrap());
    std::fs::write(
        out.join("infra_v2_descriptor.bin"),
        prost::Message::encode_to_vec(&fds),
    )
    .expect("write the descriptor set");
    tonic_prost_build::configure()
        .compile_fds(fds)
        .expect("generate the gRPC code");
}
