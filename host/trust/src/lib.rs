//! Who may do what in an infra cluster, as signatures anyone can check offline.
//!
//! An **operator key** (ed25519) is the root of a cluster's trust. It never needs to be on a
//! host: hosts hold only the public halves they trust. With it an operator signs
//! - a [`Membership`] for each host: "peer id P is a member of cluster C" (checked by every
//!   host right after the connection handshake, before any request is read);
//! - a [`PluginSignature`] for each component: "this sha256 is the `kind` plugin `name`
//!   `version`" (a cluster runs no other plugin but the built-ins);
//! - a [`SwapOrder`] for each swap: "make this sha256 the active `kind`, issued at T" (hosts
//!   take each order once and never one older than the last they took).
//!
//! Layout:
//! - `keys.rs`: [`OperatorKey`] (the secret, in a 0600 file) and [`PublicKey`];
//! - `trusted.rs`: [`Trusted`], the set of operator keys a host accepts;
//! - `member.rs`, `plugin.rs`, `swap.rs`: the three signed statements;
//! - `files.rs`: secret files created with mode 0600 from the start.
//!
//! Every statement is signed over a domain tag and length-prefixed fields, so a signature
//! made for one kind of statement can never be read as another.

mod files;
mod keys;
mod member;
mod plugin;
mod swap;
mod trusted;

pub use files::write_secret;
pub use keys::{OperatorKey, PublicKey};
pub use member::Membership;
pub use plugin::PluginSignature;
pub use swap::SwapOrder;
pub use trusted::Trusted;

/// Why a key, a file or a signature was refused.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    /// A key or signature is not well formed.
    #[error("{0}")]
    Malformed(String),
    /// The signature does not verify, or its signer is not trusted.
    #[error("{0}")]
    Refused(String),
    /// Reading or writing a file failed.
    #[error("{path}: {error}")]
    Io {
        /// The file.
        path: String,
        /// What happened.
        error: String,
    },
}

/// The bytes a statement is signed over: the domain, then each field with its length.
pub(crate) fn message(domain: &str, fields: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + fields.iter().map(|f| f.len() + 8).sum::<usize>());
    for f in std::iter::once(domain.as_bytes()).chain(fields.iter().copied()) {
        out.extend_from_slice(&(f.len() as u64).to_le_bytes());
        out.extend_from_slice(f);
    }
    out
}
