//! TLS for the control plane: a PEM certificate and key, given or made here (self-signed,
//! kept in the data folder, the key created mode 0600). A host serving beyond loopback
//! serves only TLS, so the bearer token never crosses a network in clear.

use std::path::{Path, PathBuf};

/// The certificate and key the control plane serves with (PEM).
#[derive(Clone)]
pub struct GrpcTls {
    /// Certificate chain, PEM.
    pub cert_pem: String,
    /// Private key, PEM.
    pub key_pem: String,
    /// Where the certificate is (what clients pass as `--ca`).
    pub cert_path: PathBuf,
}

/// Why no TLS identity could be had.
#[derive(Debug, thiserror::Error)]
#[error("control-plane TLS: {0}")]
pub struct TlsError(String);

impl GrpcTls {
    /// Reads a certificate and key given by the operator.
    pub fn load(cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|e| TlsError(format!("{}: {e}", p.display())))
        };
        Ok(Self {
            cert_pem: read(cert)?,
            key_pem: read(key)?,
            cert_path: cert.to_path_buf(),
        })
    }

    /// The self-signed certificate kept in `dir` (`grpc.crt`, `grpc.key`), made on first use
    /// for `names` (DNS names or IP addresses clients use to reach the host).
    pub fn self_signed_in(dir: &Path, names: Vec<String>) -> Result<Self, TlsError> {
        let (cert, key) = (dir.join("grpc.crt"), dir.join("grpc.key"));
        if cert.exists() && key.exists() {
            return Self::load(&cert, &key);
        }
        let made = rcgen::generate_simple_self_signed(names)
            .map_err(|e| TlsError(format!("making a certificate: {e}")))?;
        let key_pem = made.key_pair.serialize_pem();
        infra_trust::write_secret(&key, &key_pem).map_err(|e| TlsError(e.to_string()))?;
        std::fs::write(&cert, made.cert.pem())
            .map_err(|e| TlsError(format!("{}: {e}", cert.display())))?;
        Self::load(&cert, &key)
    }

    pub(crate) fn server_config(&self) -> tonic::transport::ServerTlsConfig {
        tonic::transport::ServerTlsConfig::new().identity(tonic::transport::Identity::from_pem(
            &self.cert_pem,
            &self.key_pem,
        ))
    }
}
