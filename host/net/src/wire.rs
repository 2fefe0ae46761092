//! The request-response protocol between peers (`/infra/rpc/1`): every message is a frame of
//! a small header (opaque bytes, JSON in practice, chosen by the layer above) and a raw body
//! (blob chunks, weights) that is never re-encoded. Both parts have named size limits, checked
//! before anything is allocated, so a hostile peer cannot make a node read an unbounded frame.

use bytes::Bytes;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;
use std::io;

/// The protocol name.
pub const RPC_PROTOCOL: StreamProtocol = StreamProtocol::new("/infra/rpc/1");
/// How long a request may wait for its answer (training tasks are requests, so this is
/// long; callers put their own, shorter deadlines on top).
pub const RPC_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30 * 60);
/// Largest header of a frame.
pub const MAX_HEAD_BYTES: usize = 1024 * 1024;
/// Largest body of a frame: one blob chunk plus room to spare.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// One message: a header and a raw body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frame {
    /// What the message is (the layer above decodes it).
    pub head: Vec<u8>,
    /// Payload bytes, possibly empty. `Bytes`, so a slice of a held blob or one buffer sent to
    /// several peers goes out without a copy.
    pub body: Bytes,
}

impl Frame {
    /// A frame without a body.
    pub fn head(head: Vec<u8>) -> Self {
        Self {
            head,
            body: Bytes::new(),
        }
    }
}

/// The codec of [`Frame`]s: `u32 head length, head, u32 body length, body`, little-endian.
#[derive(Debug, Clone, Default)]
pub struct FrameCodec;

async fn read_part<T: AsyncRead + Unpin>(
    io: &mut T,
    limit: usize,
    what: &str,
) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    io.read_exact(&mut len).await?;
    let len = u32::from_le_bytes(len) as usize;
    if len > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame {what} of {len} bytes exceeds {limit}"),
        ));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await?;
    Ok(buf)
}

async fn read_frame<T: AsyncRead + Unpin>(io: &mut T) -> io::Result<Frame> {
    let head = read_part(io, MAX_HEAD_BYTES, "head").await?;
    let body = read_part(io, MAX_BODY_BYTES, "body").await?.into();
    Ok(Frame { head, body })
}

async fn write_frame<T: AsyncWrite + Unpin>(io: &mut T, f: Frame) -> io::Result<()> {
    if f.head.len() > MAX_HEAD_BYTES || f.body.len() > MAX_BODY_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "frame of {} + {} bytes exceeds the limits ({MAX_HEAD_BYTES} + {MAX_BODY_BYTES})",
                f.head.len(),
                f.body.len()
            ),
        ));
    }
    io.write_all(&(f.head.len() as u32).to_le_bytes()).await?;
    io.write_all(&f.head).await?;
    io.write_all(&(f.body.len() as u32).to_le_bytes()).await?;
    io.write_all(&f.body).await?;
    io.close().await
}

impl libp2p::request_response::Codec for FrameCodec {
    type Protocol = StreamProtocol;
    type Request = Frame;
    type Response = Frame;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Frame>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Frame>
    where
        T: AsyncRead + Unpin + Send,
    {
        read_frame(io).await
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: Frame,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, req).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Frame,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write_frame(io, res).await
    }
}
