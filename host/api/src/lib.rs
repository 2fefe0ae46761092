//! The gRPC control plane of an infra host: the `infra.v2.Control` service, the standard
//! health service and reflection (so `grpcurl` can list and call it), all behind a bearer
//! token, over TLS whenever it listens beyond loopback.
//!
//! Layout:
//! - [`pb`]: code generated from `proto/infra/v2/infra.proto` (protox + tonic-prost-build);
//! - `auth.rs`: the token check, applied to every service, with failed attempts limited per
//!   client address;
//! - [`tls`]: the certificate the control plane serves with (given, or self-signed in the
//!   data folder);
//! - `control.rs`: the service implementation over the node's cluster layer (peers, jobs,
//!   plugins);
//! - [`serve`]: binds, serves, and stops on a shutdown future.

mod auth;
mod control;
pub mod tls;

pub use auth::{bearer, AuthError, MAX_FAILED_AUTH};
pub use control::ControlService;
pub use tls::GrpcTls;

/// Generated protobuf and gRPC code of `infra.v2`.
pub mod pb {
    #![allow(missing_docs, clippy::all)]
    tonic::include_proto!("infra.v2");
    /// The encoded file descriptor set, served by reflection.
    pub const DESCRIPTOR: &[u8] = tonic::include_file_descriptor_set!("infra_v2_descriptor");
}

/// Largest gRPC message (a plugin upload, a job with its CSV data).
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

use std::future::Future;
use std::net::SocketAddr;

/// Serves the control plane on an already-bound listener until `shutdown` resolves, over
/// TLS when `tls` is given. Every call (control, health, reflection) must carry
/// `authorization: Bearer <token>`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    control: ControlService,
    token: String,
    tls: Option<GrpcTls>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), tonic::transport::Error> {
    let check = auth::Check::new(token);
    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<pb::control_server::ControlServer<ControlService>>()
        .await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(pb::DESCRIPTOR)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .expect("the embedded descriptor sets are valid");
    let mut server = tonic::transport::Server::builder();
    if let Some(tls) = &tls {
        server = server.tls_config(tls.server_config())?;
    }
    server
        .layer(tonic::service::InterceptorLayer::new(check))
        .add_service(
            pb::control_server::ControlServer::new(control)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(health)
        .add_service(reflection)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            shutdown,
        )
        .await
}

/// Binds `addr` (port 0 picks a free one) and returns the listener and its address.
pub async fn bind(addr: SocketAddr) -> std::io::Result<(tokio::net::TcpListener, SocketAddr)> {
    let l = tokio::net::TcpListener::bind(addr).await?;
    let a = l.local_addr()?;
    Ok((l, a))
}
