//! Operator keys: ed25519, the secret half in a 0600 TOML file, the public half as 64 hex
//! digits (what hosts are configured with).

use crate::files::{parse, read, write_secret};
use crate::TrustError;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::Deserialize;
use std::fmt;
use std::path::Path;

/// An operator's signing key.
pub struct OperatorKey(SigningKey);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    secret: String,
}

impl OperatorKey {
    /// A fresh key from the operating system's random source.
    pub fn generate() -> Result<Self, TrustError> {
        let mut seed = [0u8; 32];
        getrandom::fill(&mut seed)
            .map_err(|e| TrustError::Malformed(format!("no random source: {e}")))?;
        Ok(Self(SigningKey::from_bytes(&seed)))
    }

    /// Writes the key to a new file at `path` (mode 0600; an existing file is kept).
    pub fn save(&self, path: &Path) -> Result<(), TrustError> {
        let text = format!(
            "# infra operator key: keep it secret and off the cluster's hosts\n\
             # public = \"{}\"\nsecret = \"{}\"\n",
            self.public(),
            hex::encode(self.0.to_bytes())
        );
        write_secret(path, &text)
    }

    /// Reads a key written by [`OperatorKey::save`].
    pub fn load(path: &Path) -> Result<Self, TrustError> {
        let what = path.display().to_string();
        let file: KeyFile = parse(&read(path)?, &what)?;
        let bytes: [u8; 32] = hex::decode(file.secret.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                TrustError::Malformed(format!("{what}: `secret` is not 64 hex digits"))
            })?;
        Ok(Self(SigningKey::from_bytes(&bytes)))
    }

    /// The public half.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key())
    }

    /// Signs `message` (already domain-separated by the caller).
    pub(crate) fn sign(&self, message: &[u8]) -> String {
        hex::encode(self.0.sign(message).to_bytes())
    }
}

/// An operator's public key; displayed and parsed as 64 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PublicKey(VerifyingKey);

impl PublicKey {
    /// Checks `signature` (128 hex digits) over `message`; strict ed25519 verification.
    pub(crate) fn verify(&self, message: &[u8], signature: &str) -> Result<(), TrustError> {
        let bytes: [u8; 64] = hex::decode(signature.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| TrustError::Malformed("a signature is 128 hex digits".into()))?;
        self.0
            .verify_strict(message, &Signature::from_bytes(&bytes))
            .map_err(|_| TrustError::Refused(format!("the signature by {self} does not verify")))
    }

    /// Reads a public key from `s`: 64 hex digits, or a file holding them (a key file's
    /// public half, or an operator key file, whose public half is then used).
    pub fn from_arg(s: &str) -> Result<Self, TrustError> {
        if let Ok(k) = s.parse() {
            return Ok(k);
        }
        let path = Path::new(s);
        if let Ok(k) = OperatorKey::load(path) {
            return Ok(k.public());
        }
        read(path)?
            .lines()
            .map(|l| l.trim())
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .ok_or_else(|| TrustError::Malformed(format!("{s}: no public key in it")))?
            .parse()
            .map_err(|e| TrustError::Malformed(format!("{s}: {e}")))
    }
}

impl std::str::FromStr for PublicKey {
    type Err = TrustError;

    fn from_str(s: &str) -> Result<Self, TrustError> {
        let bytes: [u8; 32] = hex::decode(s.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                TrustError::Malformed(format!(
                    "`{s}` is not an operator public key (64 hex digits)"
                ))
            })?;
        VerifyingKey::from_bytes(&bytes)
            .map(Self)
            .map_err(|_| TrustError::Malformed(format!("`{s}` is not a valid ed25519 point")))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0.to_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_key_loads_back_and_its_public_half_parses() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("op.key");
        let key = OperatorKey::generate().unwrap();
        key.save(&path).unwrap();
        let back = OperatorKey::load(&path).unwrap();
        assert_eq!(back.public(), key.public());
        assert_eq!(
            PublicKey::from_arg(&key.public().to_string()).unwrap(),
            key.public()
        );
        assert_eq!(
            PublicKey::from_arg(path.to_str().unwrap()).unwrap(),
            key.public()
        );
        let sig = key.sign(b"m");
        key.public().verify(b"m", &sig).unwrap();
        assert!(key.public().verify(b"n", &sig).is_err());
    }

    #[test]
    fn malformed_keys_are_named() {
        let e = "abc".parse::<PublicKey>().unwrap_err().to_string();
        assert!(e.contains("`abc`"), "{e}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.key");
        std::fs::write(&path, "secret = \"zz\"\n").unwrap();
        let e = OperatorKey::load(&path).err().unwrap().to_string();
        assert!(e.contains("bad.key") && e.contains("secret"), "{e}");
    }
}
