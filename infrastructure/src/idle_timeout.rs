//! Deadlines on client connections: a connection on which a read or a
//! write has waited longer than the idle timeout is closed.
//!
//! That cuts idle keep-alive connections and clients that stall mid-request
//! (slow-loris) or stop reading a response, while a slow but steady upload
//! or download, which moves bytes all the time, keeps its connection. (poem's
//! own idle timeout asks the connection to shut down gracefully, which waits
//! for a stalled request forever.)

use std::pin::Pin;
use std::time::Duration;

use poem::http::uri::Scheme;
use poem::listener::Acceptor;
use poem::web::{LocalAddr, RemoteAddr};
use tokio_io_timeout::TimeoutStream;

/// Wraps every connection an acceptor yields in read and write deadlines.
pub struct IdleTimeoutAcceptor<A> {
    inner: A,
    timeout: Duration,
}

impl<A> IdleTimeoutAcceptor<A> {
    pub fn new(inner: A, timeout: Duration) -> Self {
        Self { inner, timeout }
    }
}

impl<A: Acceptor> Acceptor for IdleTimeoutAcceptor<A> {
    type Io = Pin<Box<TimeoutStream<A::Io>>>;

    fn local_addr(&self) -> Vec<LocalAddr> {
        self.inner.local_addr()
    }

    async fn accept(&mut self) -> std::io::Result<(Self::Io, LocalAddr, RemoteAddr, Scheme)> {
        let (io, local, remote, scheme) = self.inner.accept().await?;
        let mut io = TimeoutStream::new(io);
        io.set_read_timeout(Some(self.timeout));
        io.set_write_timeout(Some(self.timeout));
        Ok((Box::pin(io), local, remote, scheme))
    }
}
