//! `infra peers` and `infra plugins`: tables from a host's control plane (gRPC).

use anyhow::Context;
use clap::Args;
use infra_api::pb;

/// Adds the bearer token to every request.
type AuthInterceptor =
    Box<dyn FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Send>;

/// Where the control plane is and how to get in.
#[derive(Args)]
pub struct HostArgs {
    /// Control-plane URL of any host.
    #[arg(long, default_value = "http://127.0.0.1:7070", env = "INFRA_HOST")]
    pub(crate) host: String,
    /// Bearer token of that host.
    #[arg(long, env = "INFRA_TOKEN", hide_env_values = true)]
    pub(crate) token: String,
    /// The host's certificate (PEM, e.g. its `grpc.crt`) for an `https://` URL.
    #[arg(long, env = "INFRA_CA")]
    pub(crate) ca: Option<std::path::PathBuf>,
}

pub(crate) type Client = pb::control_client::ControlClient<
    tonic::service::interceptor::InterceptedService<
        tonic::transport::Channel,
        Box<dyn FnMut(tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> + Send>,
    >,
>;

impl HostArgs {
    /// The host's endpoint: `https://` with the host's certificate, or `http://` to a
    /// loopback address only (the token is never sent in clear over a network).
    fn endpoint(&self) -> anyhow::Result<tonic::transport::Endpoint> {
        let uri: tonic::transport::Uri = self.host.parse().context("--host")?;
        let ep = tonic::transport::Channel::from_shared(self.host.clone())?;
        match uri.scheme_str() {
            Some("https") => {
                let ca = self.ca.as_ref().context(
                    "an https:// host needs its certificate: --ca FILE (the host's grpc.crt) or $INFRA_CA",
                )?;
                let pem = std::fs::read_to_string(ca)
                    .with_context(|| format!("--ca {}", ca.display()))?;
                Ok(ep.tls_config(
                    tonic::transport::ClientTlsConfig::new()
                        .ca_certificate(tonic::transport::Certificate::from_pem(pem)),
                )?)
            }
            Some("http") => {
                let host = uri.host().unwrap_or_default();
                let local = host == "localhost"
                    || host
                        .trim_matches(['[', ']'])
                        .parse::<std::net::IpAddr>()
                        .is_ok_and(|ip| ip.is_loopback());
                anyhow::ensure!(
                    local,
                    "refusing to send the token in clear to {host}: use https:// (with --ca)"
                );
                Ok(ep)
            }
            _ => anyhow::bail!("--host {}: expected http:// or https://", self.host),
        }
    }

    pub(crate) fn block_on<T>(
        &self,
        f: impl AsyncFnOnce(Client) -> anyhow::Result<T>,
    ) -> anyhow::Result<T> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async {
            let channel = self
                .endpoint()?
                .connect()
                .await
                .with_context(|| format!("cannot reach {}", self.host))?;
            let value: tonic::metadata::MetadataValue<_> =
                infra_api::bearer(&self.token).parse().context("token")?;
            let auth: AuthInterceptor = Box::new(move |mut req| {
                req.metadata_mut().insert("authorization", value.clone());
                Ok(req)
            });
            f(pb::control_client::ControlClient::with_interceptor(
                channel, auth,
            ))
            .await
        })
    }
}

pub(crate) fn status(e: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", e.code(), e.message())
}

/// `infra peers`.
pub fn peers(args: HostArgs) -> anyhow::Result<()> {
    let resp = args.block_on(async |mut c| {
        Ok(c.list_peers(pb::ListPeersRequest {})
            .await
            .map_err(status)?
            .into_inner())
    })?;
    println!(
        "host {} sees {} peer(s)",
        resp.self_peer_id,
        resp.peers.len()
    );
    let mut t = super::table(&[
        "peer",
        "tier",
        "CPU (cores)",
        "memory (MiB)",
        "GPUs",
        "load",
        "RTT (ms)",
        "throughput (MB/s)",
        "last seen (ms)",
        "labels",
    ]);
    for p in resp.peers {
        let labels: Vec<String> = p.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        t.add_row(vec![
            p.peer_id.clone(),
            match p.tier() {
                infra_api::pb::Tier::Edge => "edge",
                infra_api::pb::Tier::Server => "server",
                infra_api::pb::Tier::Unspecified => "?",
            }
            .to_string(),
            format!("{:.1}", p.cpu_millis as f64 / 1000.0),
            p.memory_mib.to_string(),
            p.gpus.to_string(),
            format!("{:.2}", p.load),
            if p.rtt_ms > 0.0 {
                format!("{:.2}", p.rtt_ms)
            } else {
                "-".into()
            },
            if p.bandwidth_bytes_per_s > 0.0 {
                format!("{:.0}", p.bandwidth_bytes_per_s / 1e6)
            } else {
                "-".into()
            },
            p.last_seen_ms.to_string(),
            labels.join(", "),
        ]);
    }
    println!("{t}");
    Ok(())
}

/// `infra plugins`.
pub fn plugins(args: HostArgs) -> anyhow::Result<()> {
    let resp = args.block_on(async |mut c| {
        Ok(c.list_plugins(pb::ListPluginsRequest {})
            .await
            .map_err(status)?
            .into_inner())
    })?;
    let mut t = super::table(&["kind", "name", "sha256", "built-in", "active"]);
    for p in resp.plugins {
        t.add_row(vec![
            p.kind,
            p.name,
            p.sha256,
            p.builtin.to_string(),
            if p.active {
                "yes".into()
            } else {
                String::new()
            },
        ]);
    }
    println!("{t}");
    Ok(())
}
