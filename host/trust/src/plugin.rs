//! Plugin signatures: an operator's detached signature over a component's sha256, kind,
//! name and version, kept beside it as `FILE.wasm.sig`.

use crate::files::{parse, read};
use crate::{message, OperatorKey, PublicKey, TrustError, Trusted};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const DOMAIN: &str = "infra/plugin/1";

/// "sha256 `sha256` is the `kind` plugin `name` `version`", signed by `signer`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginSignature {
    /// scheduler, aggregator or cleaner.
    pub kind: String,
    /// The name the component reports.
    pub name: String,
    /// The version the component reports.
    pub version: String,
    /// sha256 of the component's bytes, hex.
    pub sha256: String,
    /// The signing operator key, hex.
    pub signer: String,
    /// ed25519 signature, hex.
    pub signature: String,
}

impl PluginSignature {
    /// Largest signature file a host reads.
    pub const MAX_BYTES: usize = 2048;

    /// Signs a component's identity.
    pub fn sign(key: &OperatorKey, kind: &str, name: &str, version: &str, sha256: &str) -> Self {
        Self {
            kind: kind.into(),
            name: name.into(),
            version: version.into(),
            sha256: sha256.into(),
            signer: key.public().to_string(),
            signature: key.sign(&Self::signed(kind, name, version, sha256)),
        }
    }

    fn signed(kind: &str, name: &str, version: &str, sha256: &str) -> Vec<u8> {
        message(
            DOMAIN,
            &[
                kind.as_bytes(),
                name.as_bytes(),
                version.as_bytes(),
                sha256.as_bytes(),
            ],
        )
    }

    /// Checks that a trusted key signed exactly this component (`kind`, `name`, `version`
    /// and `sha256` as the host read them from the component itself); returns the signer.
    pub fn check(
        &self,
        trusted: &Trusted,
        kind: &str,
        name: &str,
        version: &str,
        sha256: &str,
    ) -> Result<PublicKey, TrustError> {
        let what = format!("plugin {name} {version} ({kind}, sha256 {sha256})");
        let ours = (kind, name, version, sha256);
        let theirs = (
            self.kind.as_str(),
            self.name.as_str(),
            self.version.as_str(),
            self.sha256.as_str(),
        );
        if ours != theirs {
            return Err(TrustError::Refused(format!(
                "{what}: its signature is for {} {} ({}, sha256 {})",
                self.name, self.version, self.kind, self.sha256
            )));
        }
        trusted.check(
            &what,
            &self.signer,
            &Self::signed(kind, name, version, sha256),
            &self.signature,
        )
    }

    /// Where a component's signature is kept: `FILE.wasm.sig`.
    pub fn path_for(component: &Path) -> PathBuf {
        let mut p = component.as_os_str().to_owned();
        p.push(".sig");
        PathBuf::from(p)
    }

    /// The TOML form.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a plugin signature serialises")
    }

    /// Parses the TOML form; `what` names the source in errors.
    pub fn from_toml(text: &str, what: &str) -> Result<Self, TrustError> {
        if text.len() > Self::MAX_BYTES {
            return Err(TrustError::Malformed(format!(
                "{what}: a plugin signature is at most {} bytes",
                Self::MAX_BYTES
            )));
        }
        parse(text, what)
    }

    /// Reads a signature file.
    pub fn load(path: &Path) -> Result<Self, TrustError> {
        Self::from_toml(&read(path)?, &path.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_covers_the_sha256_kind_name_and_version() {
        let op = OperatorKey::generate().unwrap();
        let trusted = Trusted::new([op.public()]);
        let s = PluginSignature::sign(&op, "aggregator", "krum", "1.0", "ab");
        let s = PluginSignature::from_toml(&s.to_toml(), "wire").unwrap();
        assert_eq!(
            s.check(&trusted, "aggregator", "krum", "1.0", "ab")
                .unwrap(),
            op.public()
        );
        for (k, n, v, h) in [
            ("scheduler", "krum", "1.0", "ab"),
            ("aggregator", "fedavg", "1.0", "ab"),
            ("aggregator", "krum", "2.0", "ab"),
            ("aggregator", "krum", "1.0", "cd"),
        ] {
            let e = s.check(&trusted, k, n, v, h).unwrap_err().to_string();
            assert!(e.contains("its signature is for krum 1.0"), "{e}");
        }
        let mut bent = s.clone();
        bent.sha256 = "cd".into();
        let e = bent
            .check(&trusted, "aggregator", "krum", "1.0", "cd")
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not verify"), "{e}");
        let e = s
            .check(&Trusted::default(), "aggregator", "krum", "1.0", "ab")
            .unwrap_err();
        assert!(e.to_string().contains("not a trusted operator key"), "{e}");
        assert_eq!(
            PluginSignature::path_for(Path::new("a/krum.wasm")),
            PathBuf::from("a/krum.wasm.sig")
        );
    }
}
