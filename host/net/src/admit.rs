//! Membership at the transport: right after the security handshake (TLS or noise) has
//! authenticated the other side's peer id, both sides send their membership credential over
//! the encrypted channel and check the other's. A stranger's connection fails there, before
//! the multiplexer runs: no behaviour (identify, Kademlia, gossip, requests, blob streams)
//! ever sees it, so it is never a peer, gets no task and no blob.
//!
//! An optional allowlist of peer ids narrows the members further. A host without a
//! [`Gate`] (only `--open`) neither sends nor checks a credential, so it cannot join a closed
//! cluster either.

use futures::future::BoxFuture;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, FutureExt};
use infra_trust::{Membership, Trusted};
use libp2p::core::upgrade::{InboundConnectionUpgrade, OutboundConnectionUpgrade, UpgradeInfo};
use libp2p::PeerId;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// How long the other side has to present its credential.
const CREDENTIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// What a closed host admits: members of its cluster, signed by a trusted operator key.
#[derive(Clone, Debug)]
pub struct Gate {
    own: Arc<Vec<u8>>,
    cluster: String,
    trusted: Trusted,
    allow: Option<Arc<HashSet<PeerId>>>,
}

impl Gate {
    /// A gate that presents `own` (this host's credential) and admits members of the same
    /// cluster whose credential a key in `trusted` signed (the signer of `own` is always
    /// trusted). With `allow`, only those peer ids are admitted.
    pub fn new(own: &Membership, trusted: Trusted, allow: Option<HashSet<PeerId>>) -> Self {
        let mut keys = trusted.keys().to_vec();
        keys.extend(own.operator().ok());
        Self {
            own: Arc::new(own.to_toml().into_bytes()),
            cluster: own.cluster.clone(),
            trusted: Trusted::new(keys),
            allow: allow.map(Arc::new),
        }
    }

    /// The cluster's name.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The operator keys this gate trusts.
    pub fn trusted(&self) -> &Trusted {
        &self.trusted
    }

    /// Sends this host's credential, reads and checks the other side's.
    async fn exchange<S>(&self, peer: PeerId, s: &mut S) -> Result<(), AdmitError>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        if let Some(allow) = &self.allow {
            if !allow.contains(&peer) {
                return Err(AdmitError::Refused(format!(
                    "peer {peer} is not on this host's allowlist"
                )));
            }
        }
        s.write_all(&(self.own.len() as u16).to_le_bytes()).await?;
        s.write_all(&self.own).await?;
        s.flush().await?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await?;
        let len = u16::from_le_bytes(len) as usize;
        if len > Membership::MAX_BYTES {
            return Err(AdmitError::Refused(format!(
                "peer {peer} sent no membership credential (a {len}-byte message)"
            )));
        }
        let mut buf = vec![0u8; len];
        s.read_exact(&mut buf).await?;
        let text = std::str::from_utf8(&buf).map_err(|_| {
            AdmitError::Refused(format!("peer {peer} sent no membership credential"))
        })?;
        let theirs = Membership::from_toml(text, &format!("credential of {peer}"))
            .map_err(|e| AdmitError::Refused(e.to_string()))?;
        theirs
            .check(&self.trusted, &self.cluster, &peer.to_string())
            .map_err(|e| AdmitError::Refused(e.to_string()))
    }
}

/// Why a connection was not admitted.
#[derive(Debug, thiserror::Error)]
pub enum AdmitError {
    /// The security handshake itself failed.
    #[error("{0}")]
    Handshake(Box<dyn std::error::Error + Send + Sync>),
    /// The other side is not a member.
    #[error("not a member: {0}")]
    Refused(String),
    /// The connection failed during the exchange.
    #[error("membership exchange: {0}")]
    Io(#[from] std::io::Error),
}

/// A security upgrade followed by the membership exchange (none without a gate).
#[derive(Clone)]
pub struct Admit<U> {
    inner: U,
    gate: Option<Gate>,
}

impl<U> Admit<U> {
    /// Wraps `inner`.
    pub fn new(inner: U, gate: Option<Gate>) -> Self {
        Self { inner, gate }
    }
}

impl<U: UpgradeInfo> UpgradeInfo for Admit<U> {
    type Info = U::Info;
    type InfoIter = U::InfoIter;

    fn protocol_info(&self) -> Self::InfoIter {
        self.inner.protocol_info()
    }
}

async fn admit<S, E>(
    gate: Option<Gate>,
    secured: impl std::future::Future<Output = Result<(PeerId, S), E>>,
) -> Result<(PeerId, S), AdmitError>
where
    S: AsyncRead + AsyncWrite + Unpin,
    E: std::error::Error + Send + Sync + 'static,
{
    let (peer, mut s) = secured
        .await
        .map_err(|e| AdmitError::Handshake(Box::new(e)))?;
    if let Some(gate) = gate {
        match tokio::time::timeout(CREDENTIAL_TIMEOUT, gate.exchange(peer, &mut s)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::info!(%peer, "connection refused: {e}");
                return Err(e);
            }
            Err(_) => {
                let e =
                    format!("peer {peer} sent no membership credential in {CREDENTIAL_TIMEOUT:?}");
                tracing::info!(%peer, "connection refused: {e}");
                return Err(AdmitError::Refused(e));
            }
        }
    }
    Ok((peer, s))
}

impl<U, C, S> InboundConnectionUpgrade<C> for Admit<U>
where
    U: InboundConnectionUpgrade<C, Output = (PeerId, S)> + Send + 'static,
    U::Future: Send + 'static,
    U::Error: std::error::Error + Send + Sync + 'static,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    C: Send + 'static,
{
    type Output = (PeerId, S);
    type Error = AdmitError;
    type Future = BoxFuture<'static, Result<Self::Output, Self::Error>>;

    fn upgrade_inbound(self, socket: C, info: Self::Info) -> Self::Future {
        admit(self.gate, self.inner.upgrade_inbound(socket, info)).boxed()
    }
}

impl<U, C, S> OutboundConnectionUpgrade<C> for Admit<U>
where
    U: OutboundConnectionUpgrade<C, Output = (PeerId, S)> + Send + 'static,
    U::Future: Send + 'static,
    U::Error: std::error::Error + Send + Sync + 'static,
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    C: Send + 'static,
{
    type Output = (PeerId, S);
    type Error = AdmitError;
    type Future = BoxFuture<'static, Result<Self::Output, Self::Error>>;

    fn upgrade_outbound(self, socket: C, info: Self::Info) -> Self::Future {
        admit(self.gate, self.inner.upgrade_outbound(socket, info)).boxed()
    }
}

impl Gate {
    /// A gate for a node with identity `key`, admitted into `cluster` by `operator` (tests,
    /// benchmarks and `infra cluster`, which hold the operator key themselves).
    pub fn issue(
        operator: &infra_trust::OperatorKey,
        cluster: &str,
        key: &libp2p::identity::Keypair,
    ) -> Result<Self, infra_trust::TrustError> {
        let own = Membership::issue(operator, cluster, &key.public().to_peer_id().to_string())?;
        Ok(Self::new(&own, Trusted::default(), None))
    }
}

#[cfg(test)]
mod tests;
