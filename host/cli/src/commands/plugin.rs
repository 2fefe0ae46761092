//! `infra plugin check | list | export | sign | swap`.

use super::cluster::{status, HostArgs};
use anyhow::{bail, Context};
use clap::Subcommand;
use infra_api::pb;
use infra_runtime::Runtime;
use infra_trust::{OperatorKey, PluginSignature, Trusted};
use std::path::{Path, PathBuf};

#[derive(Subcommand)]
pub enum PluginCommand {
    /// Load a component and print its kind, name, version, sha256 and exports.
    Check {
        /// The component (.wasm); a manifest next to it (same name, .toml) is read too.
        file: PathBuf,
    },
    /// List the built-in plugins.
    List,
    /// Write a built-in plugin out as a .wasm file.
    Export {
        /// Name of the built-in (see `infra plugin list`).
        name: String,
        /// Output file.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Sign a component with an operator key: writes `FILE.wasm.sig`, a detached signature
    /// over its sha256, kind, name and version (what a closed cluster requires).
    Sign {
        /// The component (.wasm).
        file: PathBuf,
        /// The operator key (`infra key new`).
        #[arg(long)]
        key: PathBuf,
    },
    /// Install a plugin on every live peer and make it the active one of its kind (running jobs
    /// take it from their next scheduling decision or round; recorded in their history).
    Swap {
        /// scheduler or aggregator.
        #[arg(long)]
        kind: String,
        /// The component; its signature `FILE.wasm.sig` goes with it when there is one.
        file: PathBuf,
        /// Operator key that signs the swap order (a closed cluster swaps only on a signed
        /// order).
        #[arg(long)]
        key: Option<PathBuf>,
        #[command(flatten)]
        host: super::cluster::HostArgs,
    },
}

impl PluginCommand {
    pub fn run(self) -> anyhow::Result<()> {
        match self {
            PluginCommand::Check { file } => check(file),
            PluginCommand::List => list(),
            PluginCommand::Export { name, output } => export(&name, &output),
            PluginCommand::Sign { file, key } => sign(&file, &key),
            PluginCommand::Swap {
                kind,
                file,
                key,
                host,
            } => swap(kind, file, key, host),
        }
    }
}

fn check(file: PathBuf) -> anyhow::Result<()> {
    let runtime = Runtime::new()?;
    let plugin = runtime
        .load_file(&file)
        .with_context(|| format!("{}", file.display()))?;
    let m = plugin.meta();
    let limits = plugin.manifest().limits;
    println!("kind:     {}", m.kind);
    println!("name:     {}", m.name);
    println!("version:  {}", m.version);
    println!("sha256:   {}", m.sha256);
    println!("size:     {} bytes", m.size_bytes);
    println!(
        "limits:   deadline {:?}, memory {} MiB",
        limits.deadline,
        limits.memory_bytes >> 20
    );
    let grants = &plugin.manifest().grants;
    println!(
        "grants:   {}",
        if grants.is_empty() {
            "none".to_string()
        } else {
            format!("{grants:?}")
        }
    );
    println!("exports:  {}", m.exports.join(", "));
    let sig_path = PluginSignature::path_for(&file);
    let signed = if sig_path.exists() {
        let sig = PluginSignature::load(&sig_path)?;
        // Checked against the key it names: whether that key is trusted is each host's call.
        let signer = sig.signer.parse::<infra_trust::PublicKey>()?;
        match sig.check(
            &Trusted::new([signer]),
            m.kind.name(),
            &m.name,
            &m.version,
            &m.sha256,
        ) {
            Ok(_) => format!("by {signer} ({}: valid)", sig_path.display()),
            Err(e) => format!("INVALID ({}): {e}", sig_path.display()),
        }
    } else {
        format!(
            "no (no {}); a closed cluster refuses it",
            sig_path.display()
        )
    };
    println!("signed:   {signed}");
    Ok(())
}

/// `infra plugin sign`.
fn sign(file: &Path, key: &Path) -> anyhow::Result<()> {
    let key = OperatorKey::load(key)?;
    let plugin = Runtime::new()?
        .load_file(file)
        .with_context(|| format!("{}", file.display()))?;
    let m = plugin.meta();
    let sig = PluginSignature::sign(&key, m.kind.name(), &m.name, &m.version, &m.sha256);
    let out = PluginSignature::path_for(file);
    std::fs::write(&out, sig.to_toml()).with_context(|| format!("{}", out.display()))?;
    println!(
        "signed {} ({} {} {}, sha256 {}) with {}: {}",
        file.display(),
        m.kind,
        m.name,
        m.version,
        m.sha256,
        key.public(),
        out.display()
    );
    Ok(())
}

/// Uploads the component `file` with its signature (`FILE.wasm.sig`, when there is one) to
/// the host; returns what the host installed and the sha256 of the file's bytes.
pub(crate) async fn upload(
    c: &mut super::cluster::Client,
    file: &Path,
) -> anyhow::Result<(pb::Plugin, String)> {
    let wasm = std::fs::read(file).with_context(|| format!("{}", file.display()))?;
    let local_sha = infra_runtime::sha256_hex(&wasm);
    let signature = signature_text(file)?;
    let p = c
        .install_plugin(pb::InstallPluginRequest { wasm, signature })
        .await
        .map_err(status)
        .with_context(|| format!("installing {}", file.display()))?
        .into_inner();
    Ok((p, local_sha))
}

/// The signature kept beside `file` (`FILE.wasm.sig`), as text; empty when there is none.
fn signature_text(file: &Path) -> anyhow::Result<String> {
    let path = PluginSignature::path_for(file);
    if !path.exists() {
        return Ok(String::new());
    }
    Ok(PluginSignature::load(&path)?.to_toml())
}

fn list() -> anyhow::Result<()> {
    let runtime = Runtime::new()?;
    let mut t = super::table(&["kind", "name", "version", "sha256", "size", "description"]);
    for b in infra_builtins::BUILTINS {
        let p = runtime
            .load(b.bytes)
            .with_context(|| format!("built-in {}", b.name))?;
        let m = p.meta();
        t.add_row(vec![
            m.kind.to_string(),
            m.name.clone(),
            m.version.clone(),
            m.sha256.clone(),
            format!("{} KiB", m.size_bytes.div_ceil(1024)),
            m.description.clone(),
        ]);
    }
    println!("{t}");
    Ok(())
}

fn export(name: &str, output: &PathBuf) -> anyhow::Result<()> {
    let Some(b) = infra_builtins::find(name) else {
        let all: Vec<&str> = infra_builtins::BUILTINS.iter().map(|b| b.name).collect();
        bail!(
            "no built-in plugin `{name}` (built-ins: {})",
            all.join(", ")
        );
    };
    std::fs::write(output, b.bytes).with_context(|| format!("{}", output.display()))?;
    println!(
        "wrote {} ({} {}, {} bytes, sha256 {})",
        output.display(),
        b.world,
        b.name,
        b.bytes.len(),
        infra_runtime::sha256_hex(b.bytes)
    );
    Ok(())
}

/// `infra plugin swap`: uploads the component with its signature (`FILE.wasm.sig`, if
/// there is one) and orders the swap, signed with the operator key `key` when given.
fn swap(kind: String, file: PathBuf, key: Option<PathBuf>, host: HostArgs) -> anyhow::Result<()> {
    let key = key
        .map(|k| infra_trust::OperatorKey::load(&k))
        .transpose()?;
    host.block_on(async |mut c| {
        let (p, local_sha) = upload(&mut c, &file).await?;
        let order = key.as_ref().map_or(String::new(), |k| {
            infra_trust::SwapOrder::issue(k, &kind, &local_sha).to_toml()
        });
        if p.kind != kind {
            anyhow::bail!("{} is a {} plugin, not a {kind}", file.display(), p.kind);
        }
        if p.sha256 != local_sha {
            anyhow::bail!(
                "the host installed sha256:{} but {} is sha256:{local_sha}",
                p.sha256,
                file.display()
            );
        }
        let out = c
            .swap_plugin(pb::SwapPluginRequest {
                kind: kind.clone(),
                sha256: p.sha256.clone(),
                order,
            })
            .await
            .map_err(status)?
            .into_inner();
        println!(
            "{kind} is now {} sha256:{} on {} peer(s)",
            p.name,
            p.sha256,
            out.peers.iter().filter(|o| o.ok).count()
        );
        let mut t = super::table(&["peer", "swapped", "error"]);
        for o in &out.peers {
            t.add_row(vec![o.peer_id.clone(), o.ok.to_string(), o.error.clone()]);
        }
        println!("{t}");
        Ok(())
    })
}
