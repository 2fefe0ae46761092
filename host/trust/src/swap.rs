//! Swap orders: an operator's signed instruction to make one plugin the active one of its
//! kind, with the time it was issued. A host takes an order only if it is newer than the
//! last one it took, so an old order replayed cannot roll a swap back.

use crate::files::parse;
use crate::{message, OperatorKey, PublicKey, TrustError, Trusted};
use serde::{Deserialize, Serialize};

const DOMAIN: &str = "infra/swap/1";

/// "Make `sha256` the active `kind`", issued at `issued_ms` and signed by `signer`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwapOrder {
    /// scheduler or aggregator.
    pub kind: String,
    /// sha256 of the plugin, hex.
    pub sha256: String,
    /// When the operator issued it, milliseconds since the Unix epoch.
    pub issued_ms: u64,
    /// The signing operator key, hex.
    pub signer: String,
    /// ed25519 signature, hex.
    pub signature: String,
}

impl SwapOrder {
    /// Largest encoded order a host reads.
    pub const MAX_BYTES: usize = 1024;

    /// Signs an order issued now.
    pub fn issue(key: &OperatorKey, kind: &str, sha256: &str) -> Self {
        let issued_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        Self {
            kind: kind.into(),
            sha256: sha256.into(),
            issued_ms,
            signer: key.public().to_string(),
            signature: key.sign(&Self::signed(kind, sha256, issued_ms)),
        }
    }

    fn signed(kind: &str, sha256: &str, issued_ms: u64) -> Vec<u8> {
        message(
            DOMAIN,
            &[kind.as_bytes(), sha256.as_bytes(), &issued_ms.to_le_bytes()],
        )
    }

    /// Checks the order is signed by a trusted key and orders exactly this swap.
    pub fn check(
        &self,
        trusted: &Trusted,
        kind: &str,
        sha256: &str,
    ) -> Result<PublicKey, TrustError> {
        if self.kind != kind || self.sha256 != sha256 {
            return Err(TrustError::Refused(format!(
                "the swap order is for {} {}, not {kind} {sha256}",
                self.kind, self.sha256
            )));
        }
        trusted.check(
            &format!("swap order for {kind} {sha256}"),
            &self.signer,
            &Self::signed(kind, sha256, self.issued_ms),
            &self.signature,
        )
    }

    /// The TOML form (what travels in requests).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a swap order serialises")
    }

    /// Parses the TOML form, bounded.
    pub fn from_toml(text: &str) -> Result<Self, TrustError> {
        if text.len() > Self::MAX_BYTES {
            return Err(TrustError::Malformed(format!(
                "a swap order is at most {} bytes",
                Self::MAX_BYTES
            )));
        }
        parse(text, "swap order")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_order_names_one_swap_and_only_a_trusted_key_signs_it() {
        let op = OperatorKey::generate().unwrap();
        let trusted = Trusted::new([op.public()]);
        let o = SwapOrder::from_toml(&SwapOrder::issue(&op, "aggregator", "ab").to_toml()).unwrap();
        o.check(&trusted, "aggregator", "ab").unwrap();
        let e = o
            .check(&trusted, "aggregator", "cd")
            .unwrap_err()
            .to_string();
        assert!(e.contains("is for aggregator ab"), "{e}");
        let mut later = o.clone();
        later.issued_ms += 1;
        let e = later
            .check(&trusted, "aggregator", "ab")
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not verify"), "{e}");
        let other = OperatorKey::generate().unwrap();
        let e = SwapOrder::issue(&other, "aggregator", "ab")
            .check(&trusted, "aggregator", "ab")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a trusted operator key"), "{e}");
    }
}
