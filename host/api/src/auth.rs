//! Bearer-token authentication: no token, no access. A client address that fails
//! [`MAX_FAILED_AUTH`] times within [`FAILED_AUTH_WINDOW`] is refused without its token being
//! compared until the window has passed, so a token cannot be guessed at network speed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tonic::{Request, Status};

/// Failed authentications a client address may have within [`FAILED_AUTH_WINDOW`].
pub const MAX_FAILED_AUTH: u32 = 10;
/// The window failed authentications are counted in.
pub const FAILED_AUTH_WINDOW: Duration = Duration::from_secs(10);
/// Client addresses tracked at most (the oldest windows go first).
const MAX_TRACKED: usize = 4096;

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
    /// Failures per client address: (start of its window, failures in it).
    failures: Arc<Mutex<HashMap<Option<IpAddr>, (Instant, u32)>>>,
}

impl Check {
    pub(crate) fn new(token: String) -> Self {
        Self {
            expected: format!("Bearer {token}"),
            failures: Default::default(),
        }
    }

    /// Whether `from` has used up its failures in the current window.
    fn locked_out(&self, from: Option<IpAddr>) -> Option<Duration> {
        let map = self.failures.lock().expect("auth lock");
        let (start, n) = map.get(&from)?;
        let left = FAILED_AUTH_WINDOW.checked_sub(start.elapsed())?;
        (*n >= MAX_FAILED_AUTH).then_some(left)
    }

    fn failed(&self, from: Option<IpAddr>) {
        let mut map = self.failures.lock().expect("auth lock");
        if map.len() >= MAX_TRACKED {
            map.retain(|_, (start, _)| start.elapsed() < FAILED_AUTH_WINDOW);
        }
        let e = map.entry(from).or_insert((Instant::now(), 0));
        if e.0.elapsed() >= FAILED_AUTH_WINDOW {
            *e = (Instant::now(), 0);
        }
        e.1 += 1;
        if e.1 == MAX_FAILED_AUTH {
            tracing::warn!(client = ?from, "{MAX_FAILED_AUTH} failed authentications: refused for {FAILED_AUTH_WINDOW:?}");
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
        let from = req.remote_addr().map(|a| a.ip());
        if let Some(left) = self.locked_out(from) {
            return Err(Status::resource_exhausted(format!(
                "too many failed authentications from this address: try again in {} s",
                left.as_secs() + 1
            )));
        }
        let refused = match req.metadata().get("authorization").map(|v| v.as_bytes()) {
            None => Status::unauthenticated("missing `authorization: Bearer <token>`"),
            Some(v) if constant_time_eq(v, self.expected.as_bytes()) => return Ok(req),
            Some(_) => Status::unauthenticated("wrong token"),
        };
        self.failed(from);
        Err(refused)
    }
}
