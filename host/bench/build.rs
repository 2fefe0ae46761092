include!("../build-support/libtorch_rpath.rs");

fn main() {
    libtorch_rpath();
}
