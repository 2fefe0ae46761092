//! A plain WASI command (exports `wasi:cli/run`): loading it as a plugin must fail.
fn main() {
    println!("not a plugin");
}
