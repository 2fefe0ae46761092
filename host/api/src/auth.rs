//! Bearer-token authentication: no token, no access.

use tonic::{Request, Status};

/// Why a call was refused.
#[derive(Debug)]
pub enum AuthError {
    /// No `authorization` metadata.
    Missing,
    /// Present but wrong.
    Wrong,
}

/// Checks `authorization: Bearer <token>` on every request.
#[derive(Clone)]
pub struct Check {
    expected: String,
}

impl Check {
    pub(crate) fn new(token: String) -> Self {
        Self {
            expected: format!("Bearer {token}"),
        }
    }
}

/// The metadata value a client sends for `token`.
pub fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl tonic::service::Interceptor for Check {
    fn call(&mut self, req: Request<()>) -> Result<Request<()>, Status> {
        match req.metadata().get("authorization").map(|v| v.as_bytes()) {
            None => Err(Status::unauthenticated(
                "missing `authorization: Bearer <token>`",
            )),
            Some(v) if constant_time_eq(v, self.expected.as_bytes()) => Ok(req),
            Some(_) => Err(Status::unauthenticated("wrong token")),
        }
    }
}
