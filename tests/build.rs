include!("../host/build-support/libtorch_rpath.rs");
