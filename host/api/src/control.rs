//! `infra.v1.Control` over the node's network client.

use crate::pb;
use tonic::{Request, Response, Status};

/// The control service of one host.
pub struct ControlService {
    net: infra_net::Client,
}

impl ControlService {
    /// A service answering from `net` (peers) and the built-in plugins.
    pub fn new(net: infra_net::Client) -> Self {
        Self { net }
    }
}

#[tonic::async_trait]
impl pb::control_server::Control for ControlService {
    async fn list_peers(
        &self,
        _: Request<pb::ListPeersRequest>,
    ) -> Result<Response<pb::ListPeersResponse>, Status> {
        let peers = self
            .net
            .peers()
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        let peers = peers
            .into_iter()
            .map(|p| pb::Peer {
                peer_id: p.peer.to_string(),
                tier: p.status.tier,
                labels: p.status.labels.into_iter().collect(),
                cpu_millis: p.status.cpu_millis,
                memory_mib: p.status.memory_mib,
                gpus: p.status.gpus,
                load: p.status.load,
                last_seen_ms: p.age.as_millis() as u64,
                rtt_ms: p.rtt.map_or(0.0, |d| d.as_secs_f64() * 1e3),
            })
            .collect();
        Ok(Response::new(pb::ListPeersResponse {
            self_peer_id: self.net.peer_id().to_string(),
            peers,
        }))
    }

    async fn list_plugins(
        &self,
        _: Request<pb::ListPluginsRequest>,
    ) -> Result<Response<pb::ListPluginsResponse>, Status> {
        let plugins = infra_builtins::BUILTINS
            .iter()
            .map(|b| pb::Plugin {
                kind: b.world.to_string(),
                name: b.name.to_string(),
                sha256: infra_runtime::sha256_hex(b.bytes),
                builtin: true,
            })
            .collect();
        Ok(Response::new(pb::ListPluginsResponse { plugins }))
    }
}
