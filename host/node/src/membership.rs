//! Whom this host admits: its membership credential and the operator keys it trusts, or an
//! explicit `--open`. Without membership the host listens only on loopback.

use anyhow::{bail, Context};
use infra_net::{Gate, Keypair, Multiaddr, PeerId};
use infra_trust::{Membership, PublicKey, Trusted};
use std::collections::HashSet;
use std::path::Path;

/// The gate for this host, or `None` when it runs open (loopback only, or `--open`).
pub fn gate(
    membership: Option<&Path>,
    keypair: Option<&Keypair>,
    trust: &[String],
    allow: Vec<PeerId>,
    listen: &Multiaddr,
    open: bool,
) -> anyhow::Result<Option<Gate>> {
    let Some(path) = membership else {
        if !open && !is_loopback(listen) {
            bail!(
                "refusing to listen on {listen} without membership: any process that reaches it \
                 would join the cluster, get its tasks and data, and could swap its plugins. \
                 Give this host a credential (`infra member add --key OPERATOR.key --cluster NAME \
                 --data-dir DIR`, then `--data-dir DIR`), listen on 127.0.0.1, or pass --open \
                 (unsafe)"
            );
        }
        if open && !is_loopback(listen) {
            tracing::warn!(
                "--open on {listen}: any process that reaches this port joins the cluster, gets \
                 its tasks and data, and can swap its plugins"
            );
        }
        if !trust.is_empty() || !allow.is_empty() {
            bail!("--trust and --allow need a membership credential (--membership)");
        }
        return Ok(None);
    };
    if open {
        bail!(
            "--open and a membership credential ({}) contradict each other",
            path.display()
        );
    }
    let Some(keypair) = keypair else {
        bail!(
            "a membership credential is for one peer id: give the host its identity with --data-dir"
        );
    };
    let own = Membership::load(path)?;
    let me = keypair.public().to_peer_id().to_string();
    let keys = trust
        .iter()
        .map(|t| PublicKey::from_arg(t).with_context(|| format!("--trust {t}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let gate = Gate::new(
        &own,
        Trusted::new(keys),
        (!allow.is_empty()).then(|| allow.into_iter().collect::<HashSet<_>>()),
    );
    own.check(gate.trusted(), &own.cluster, &me)
        .with_context(|| format!("{}: this host is {me}", path.display()))?;
    Ok(Some(gate))
}

/// Whether every address `listen` names is on this machine only.
fn is_loopback(listen: &Multiaddr) -> bool {
    use infra_net::Protocol;
    listen.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_loopback(),
        Protocol::Ip6(ip) => ip.is_loopback(),
        _ => false,
    })
}
