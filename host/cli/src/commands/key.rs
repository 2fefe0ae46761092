//! `infra key new` and `infra member add`: an operator key, and a host's membership
//! credential signed with it.

use anyhow::Context;
use clap::{Args, Subcommand};
use infra_trust::{Membership, OperatorKey};
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Make an operator key: the secret in FILE (mode 0600; keep it off the cluster's hosts),
    /// its public half printed and written to FILE.pub (what hosts trust with `--trust`).
    New {
        /// Where the secret goes (an existing file is never overwritten).
        #[arg(long)]
        out: PathBuf,
    },
    /// Print an operator key's public half.
    Show {
        /// The key file.
        file: PathBuf,
    },
}

impl KeyCommand {
    pub fn run(self) -> anyhow::Result<()> {
        match self {
            KeyCommand::New { out } => {
                let key = OperatorKey::generate()?;
                key.save(&out)?;
                let public = public_path(&out);
                std::fs::write(&public, format!("{}\n", key.public()))
                    .with_context(|| format!("{}", public.display()))?;
                println!("{}", key.public());
                eprintln!(
                    "operator key: {} (secret, 0600), public key: {}",
                    out.display(),
                    public.display()
                );
                Ok(())
            }
            KeyCommand::Show { file } => {
                println!("{}", OperatorKey::load(&file)?.public());
                Ok(())
            }
        }
    }
}

fn public_path(key: &Path) -> PathBuf {
    let mut p = key.as_os_str().to_owned();
    p.push(".pub");
    PathBuf::from(p)
}

#[derive(Subcommand)]
pub enum MemberCommand {
    /// Admit a host into a cluster: creates the host's identity in DIR if it has none and
    /// writes DIR/membership.toml, signed with the operator key (the host reads both when
    /// started with `--data-dir DIR`).
    Add(AddArgs),
}

#[derive(Args)]
pub struct AddArgs {
    /// The operator key.
    #[arg(long)]
    key: PathBuf,
    /// The cluster's name.
    #[arg(long)]
    cluster: String,
    /// The host's data directory.
    #[arg(long)]
    data_dir: PathBuf,
}

impl MemberCommand {
    pub fn run(self) -> anyhow::Result<()> {
        let MemberCommand::Add(a) = self;
        let key = OperatorKey::load(&a.key)?;
        let peer = admit(&key, &a.cluster, &a.data_dir)?;
        println!("{peer}");
        eprintln!(
            "{peer} is a member of `{}`: {}",
            a.cluster,
            a.data_dir.join("membership.toml").display()
        );
        Ok(())
    }
}

/// Writes `dir/membership.toml` for the host whose identity is (or is created) in `dir`;
/// returns its peer id.
pub(crate) fn admit(key: &OperatorKey, cluster: &str, dir: &Path) -> anyhow::Result<String> {
    let identity = infra_net::load_or_create_identity(&dir.join("identity.key"))?;
    let peer = identity.public().to_peer_id().to_string();
    let m = Membership::issue(key, cluster, &peer)?;
    let path = dir.join("membership.toml");
    infra_train::durable::replace(&path, m.to_toml().as_bytes())
        .with_context(|| format!("{}", path.display()))?;
    Ok(peer)
}
