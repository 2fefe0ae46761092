//! The operator keys a host accepts signatures from.

use crate::keys::PublicKey;
use crate::TrustError;

/// A set of trusted operator keys. Empty means nothing signed is accepted (an open host
/// checks nothing at all, and holds no `Trusted`).
#[derive(Clone, Debug, Default)]
pub struct Trusted(Vec<PublicKey>);

impl Trusted {
    /// Trusts these keys.
    pub fn new(keys: impl IntoIterator<Item = PublicKey>) -> Self {
        let mut v: Vec<PublicKey> = Vec::new();
        for k in keys {
            if !v.contains(&k) {
                v.push(k);
            }
        }
        Self(v)
    }

    /// The keys.
    pub fn keys(&self) -> &[PublicKey] {
        &self.0
    }

    /// Checks that `signer` (hex) is trusted and signed `message` with `signature`; `what`
    /// names the statement in the error.
    pub(crate) fn check(
        &self,
        what: &str,
        signer: &str,
        message: &[u8],
        signature: &str,
    ) -> Result<PublicKey, TrustError> {
        let key: PublicKey = signer
            .parse()
            .map_err(|e| TrustError::Malformed(format!("{what}: signer: {e}")))?;
        if !self.0.contains(&key) {
            return Err(TrustError::Refused(format!(
                "{what}: signed by {key}, which is not a trusted operator key"
            )));
        }
        key.verify(message, signature)
            .map_err(|e| TrustError::Refused(format!("{what}: {e}")))?;
        Ok(key)
    }
}
