//! Lingering close: a connection the replica ends is never reset.
//!
//! When hyper ends a connection whose peer is still sending (it answered a
//! request it could not parse, say one with more than 100 headers, and
//! closed), closing the socket with unread data makes the kernel send a TCP
//! reset instead of a FIN. A reset can overtake the answer: nginx then reads
//! "connection reset" instead of the 431, logs "upstream prematurely closed
//! connection", and counts a failed attempt against a healthy replica. So,
//! as nginx itself and Apache do, the replica closes in two steps: it shuts
//! its sending side (the answer, then a FIN, reach the peer in order) and
//! reads and drops what the peer still sends until the peer closes too, for
//! at most [`LINGER_TIME`] and [`LINGER_BYTES`].
//!
//! (`body.rs` reads every request body whole, so a connection almost never
//! ends with a request half read; this covers the cases hyper itself ends.)

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Sleep;

/// The longest a closing connection waits for its peer to close.
const LINGER_TIME: Duration = Duration::from_secs(2);
/// The most a closing connection reads (and drops) from its peer.
const LINGER_BYTES: usize = 1024 * 1024;

/// The replica's listener: TCP connections that close by lingering.
pub(crate) struct LingeringListener(pub(crate) TcpListener);

impl axum::serve::Listener for LingeringListener {
    type Io = Lingering;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // axum's own accept loop: it retries (and logs) failed accepts.
        let (stream, address) = axum::serve::Listener::accept(&mut self.0).await;
        (Lingering { stream, closing: Closing::Open }, address)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// One accepted connection.
pub(crate) struct Lingering {
    stream: TcpStream,
    closing: Closing,
}

enum Closing {
    Open,
    /// Our FIN is sent; reading what the peer still sends until this fires.
    Draining { deadline: Pin<Box<Sleep>>, drained: usize },
    Closed,
}

impl AsyncRead for Lingering {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(mut self: Pin<&mut Self>, cx: &mut Context<'_>, bufs: &[io::IoSlice<'_>]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        loop {
            match &mut this.closing {
                Closing::Open => {
                    ready!(Pin::new(&mut this.stream).poll_shutdown(cx))?;
                    this.closing = Closing::Draining { deadline: Box::pin(tokio::time::sleep(LINGER_TIME)), drained: 0 };
                }
                Closing::Draining { deadline, drained } => {
                    let mut scratch = [0u8; 4096];
                    let mut buf = ReadBuf::new(&mut scratch);
                    match Pin::new(&mut this.stream).poll_read(cx, &mut buf) {
                        // The peer closed too (or broke): done.
                        Poll::Ready(Ok(())) if buf.filled().is_empty() => this.closing = Closing::Closed,
                        Poll::Ready(Err(_)) => this.closing = Closing::Closed,
                        Poll::Ready(Ok(())) => {
                            *drained += buf.filled().len();
                            if *drained > LINGER_BYTES {
                                this.closing = Closing::Closed;
                            }
                        }
                        Poll::Pending => {
                            ready!(deadline.as_mut().poll(cx));
                            this.closing = Closing::Closed;
                        }
                    }
                }
                Closing::Closed => return Poll::Ready(Ok(())),
            }
        }
    }
}
