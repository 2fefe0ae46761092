//! Membership credentials: an operator's signature over (cluster, peer id). A host presents
//! its own right after the connection handshake and checks the other side's before anything
//! else runs on the connection.

use crate::files::{parse, read};
use crate::{message, OperatorKey, PublicKey, TrustError, Trusted};
use serde::{Deserialize, Serialize};
use std::path::Path;

const DOMAIN: &str = "infra/member/1";

/// "Peer `peer` is a member of cluster `cluster`", signed by `operator`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Membership {
    /// The cluster's name (credentials of another cluster signed by the same key do not
    /// admit).
    pub cluster: String,
    /// The member's libp2p peer id, as printed (`12D3KooW...`).
    pub peer: String,
    /// The signing operator key, hex.
    pub operator: String,
    /// ed25519 signature, hex.
    pub signature: String,
}

impl Membership {
    /// Largest encoded credential a host reads from a peer.
    pub const MAX_BYTES: usize = 1024;

    /// Signs `peer` into `cluster` with `key`.
    pub fn issue(key: &OperatorKey, cluster: &str, peer: &str) -> Result<Self, TrustError> {
        if cluster.is_empty() || cluster.len() > 64 {
            return Err(TrustError::Malformed(
                "a cluster name has 1 to 64 characters".into(),
            ));
        }
        Ok(Self {
            cluster: cluster.into(),
            peer: peer.into(),
            operator: key.public().to_string(),
            signature: key.sign(&Self::signed(cluster, peer)),
        })
    }

    fn signed(cluster: &str, peer: &str) -> Vec<u8> {
        message(DOMAIN, &[cluster.as_bytes(), peer.as_bytes()])
    }

    /// The operator key that signed it (not yet checked).
    pub fn operator(&self) -> Result<PublicKey, TrustError> {
        self.operator.parse()
    }

    /// Checks another host's credential: signed by a trusted key, for this cluster, and for
    /// the peer id the handshake authenticated.
    pub fn check(&self, trusted: &Trusted, cluster: &str, peer: &str) -> Result<(), TrustError> {
        if self.cluster != cluster {
            return Err(TrustError::Refused(format!(
                "peer {peer} is a member of cluster `{}`, not `{cluster}`",
                self.cluster
            )));
        }
        if self.peer != peer {
            return Err(TrustError::Refused(format!(
                "peer {peer} presented the credential of {}",
                self.peer
            )));
        }
        trusted
            .check(
                &format!("membership of {peer}"),
                &self.operator,
                &Self::signed(&self.cluster, &self.peer),
                &self.signature,
            )
            .map(|_| ())
    }

    /// The TOML form (the file `infra member add` writes, and what goes on the wire).
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a membership serialises")
    }

    /// Parses the TOML form; `what` names the source in errors.
    pub fn from_toml(text: &str, what: &str) -> Result<Self, TrustError> {
        parse(text, what)
    }

    /// Reads a credential file.
    pub fn load(path: &Path) -> Result<Self, TrustError> {
        Self::from_toml(&read(path)?, &path.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_admits_its_peer_into_its_cluster_only() {
        let op = OperatorKey::generate().unwrap();
        let trusted = Trusted::new([op.public()]);
        let m = Membership::issue(&op, "lab", "peerA").unwrap();
        let m = Membership::from_toml(&m.to_toml(), "wire").unwrap();
        m.check(&trusted, "lab", "peerA").unwrap();
        let e = m.check(&trusted, "lab", "peerB").unwrap_err().to_string();
        assert!(e.contains("credential of peerA"), "{e}");
        let e = m.check(&trusted, "prod", "peerA").unwrap_err().to_string();
        assert!(e.contains("cluster `lab`, not `prod`"), "{e}");
        // Signed by a key the host does not trust.
        let stranger = OperatorKey::generate().unwrap();
        let forged = Membership::issue(&stranger, "lab", "peerA").unwrap();
        let e = forged
            .check(&trusted, "lab", "peerA")
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a trusted operator key"), "{e}");
        // A trusted signer named, but the signature altered.
        let mut bent = m.clone();
        bent.peer = "peerC".into();
        let e = bent
            .check(&trusted, "lab", "peerC")
            .unwrap_err()
            .to_string();
        assert!(e.contains("does not verify"), "{e}");
    }

    proptest::proptest! {
        /// Whatever a peer presents as its credential, and whatever a plugin's signature file
        /// or a swap order holds, reading and checking it is an answer, never a panic.
        #[test]
        fn any_text_is_a_statement_or_an_error(text in ".{0,600}", sig in "[0-9a-f]{0,130}") {
            let trusted = Trusted::new([OperatorKey::generate().unwrap().public()]);
            if let Ok(m) = Membership::from_toml(&text, "wire") {
                let _ = m.check(&trusted, "lab", "p");
            }
            let _ = crate::PluginSignature::from_toml(&text, "wire");
            let _ = crate::SwapOrder::from_toml(&text);
            let m = Membership { cluster: "lab".into(), peer: "p".into(), operator: sig.clone(), signature: sig };
            let _ = m.check(&trusted, "lab", "p");
        }
    }
}
