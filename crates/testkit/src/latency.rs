//! A TCP proxy that adds a fixed delay to each direction, so a test or benchmark can put a
//! real network distance (say 10 ms round trip) between a client and a local server.
//!
//! Each chunk read is stamped and written out `one_way` later, by a separate task per
//! direction: the delay is added once per trip, not once per chunk, and throughput is not
//! capped (as on a long, wide link).

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

/// A listening proxy; stops accepting and drops every connection when dropped.
#[derive(Debug)]
pub struct LatencyProxy {
    addr: SocketAddr,
    _stop: watch::Sender<()>,
}

impl LatencyProxy {
    /// Listens on a free local port and forwards every connection to `target`, delaying
    /// each direction by `one_way` (the round trip grows by twice that).
    ///
    /// # Errors
    /// When no local port can be bound.
    pub async fn start(target: SocketAddr, one_way: Duration) -> io::Result<LatencyProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(());
        tokio::spawn(accept(listener, target, one_way, stopped));
        Ok(LatencyProxy { addr, _stop: stop })
    }

    /// The address clients connect to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port clients connect to (on 127.0.0.1).
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
}

async fn accept(
    listener: TcpListener,
    target: SocketAddr,
    one_way: Duration,
    mut stopped: watch::Receiver<()>,
) {
    loop {
        let inbound = tokio::select! {
            a = listener.accept() => a,
            _ = stopped.changed() => return,
        };
        let Ok((inbound, _)) = inbound else { continue };
        let stopped = stopped.clone();
        tokio::spawn(async move {
            let Ok(outbound) = TcpStream::connect(target).await else {
                return;
            };
            let _ = inbound.set_nodelay(true);
            let _ = outbound.set_nodelay(true);
            let (ir, iw) = inbound.into_split();
            let (or, ow) = outbound.into_split();
            let mut s = stopped.clone();
            tokio::select! {
                () = pipe(ir, ow, one_way) => {}
                () = pipe(or, iw, one_way) => {}
                _ = s.changed() => {}
            }
        });
    }
}

/// Copies `from` to `to`, each chunk `delay` after it was read. Returns when either side
/// closes.
async fn pipe(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, delay: Duration) {
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let writer = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if to.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = to.shutdown().await;
    };
    let reader = async move {
        let mut buf = vec![0_u8; 64 * 1024];
        loop {
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => {
                    if tx
                        .send((Instant::now() + delay, buf[..n].to_vec()))
                        .is_err()
                    {
                        return;
                    }
                }
            }
        }
    };
    // The writer drains what was read before the reader saw the end.
    tokio::join!(reader, writer);
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn echo_server() -> SocketAddr {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = l.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((s, _)) = l.accept().await {
                tokio::spawn(async move {
                    let (mut r, mut w) = s.into_split();
                    let _ = tokio::io::copy(&mut r, &mut w).await;
                });
            }
        });
        addr
    }

    async fn round_trip(s: &mut TcpStream, payload: &[u8]) -> (Vec<u8>, Duration) {
        let t = Instant::now();
        s.write_all(payload).await.expect("write");
        let mut back = vec![0_u8; payload.len()];
        s.read_exact(&mut back).await.expect("read");
        (back, t.elapsed())
    }

    #[tokio::test]
    async fn bytes_pass_intact_and_every_round_trip_takes_at_least_two_delays() {
        let one_way = Duration::from_millis(20);
        let proxy = LatencyProxy::start(echo_server().await, one_way)
            .await
            .expect("proxy");
        let mut s = TcpStream::connect(proxy.addr()).await.expect("connect");
        s.set_nodelay(true).expect("nodelay");
        // A delay can only make a trip longer: lower bounds are exact, not timing guesses.
        for _ in 0..3 {
            let (back, took) = round_trip(&mut s, b"ping").await;
            assert_eq!(back, b"ping");
            assert!(took >= 2 * one_way, "{took:?}");
        }
        let big: Vec<u8> = (0..1_000_000_u32).map(|i| (i % 251) as u8).collect();
        let (back, took) = round_trip(&mut s, &big).await;
        assert!(back == big, "a megabyte came back changed");
        assert!(took >= 2 * one_way, "{took:?}");
    }

    #[tokio::test]
    async fn dropping_the_proxy_closes_its_connections() {
        let proxy = LatencyProxy::start(echo_server().await, Duration::from_millis(1))
            .await
            .expect("proxy");
        let mut s = TcpStream::connect(proxy.addr()).await.expect("connect");
        assert_eq!(round_trip(&mut s, b"x").await.0, b"x");
        drop(proxy);
        let mut buf = [0_u8; 1];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("closed within 5 s");
        assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    }
}
