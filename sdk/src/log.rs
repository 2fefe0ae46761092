//! The host's structured log. Records are tagged with the plugin's name by the host.
//! Compiled natively (tests, benchmarks) the records go to stderr.

use crate::scheduler::infra::plugins::log::Level;

fn emit(level: Level, message: &str) {
    #[cfg(target_arch = "wasm32")]
    crate::scheduler::infra::plugins::log::log(level, message);
    #[cfg(not(target_arch = "wasm32"))]
    eprintln!("[{level:?}] {message}");
}

/// Logs at debug level.
pub fn debug(message: &str) {
    emit(Level::Debug, message)
}

/// Logs at info level.
pub fn info(message: &str) {
    emit(Level::Info, message)
}

/// Logs at warn level.
pub fn warn(message: &str) {
    emit(Level::Warn, message)
}

/// Logs at error level.
pub fn error(message: &str) {
    emit(Level::Error, message)
}
