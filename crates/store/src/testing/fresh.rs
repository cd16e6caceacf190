//! A freshly started SecantusDB per benchmark scenario, reached directly or through testkit's
//! latency proxy: the scale benchmarks of both schedulers measure their writes this way.

use std::time::Duration;

use testkit::latency::LatencyProxy;

use super::{MongoInstance, unique_name};

/// A new database on a server of its own, optionally behind a proxy that delays each direction
/// by a fixed time. The proxy and the server stop on drop.
pub struct FreshMongo {
    /// `mongodb://127.0.0.1:<port>/t_<uuid>?directConnection=true`: the proxy's port when
    /// there is one, else the server's.
    pub url: String,
    /// The port [`FreshMongo::url`] names.
    port: u16,
    // Declared before the server so that it stops first.
    _proxy: Option<LatencyProxy>,
    _server: MongoInstance,
}

impl FreshMongo {
    /// Starts a server; with `one_way`, also a proxy in front of it adding that delay to each
    /// direction (the round trip grows by twice that).
    pub async fn start(one_way: Option<Duration>) -> FreshMongo {
        Self::start_with(one_way, MongoInstance::start()).await
    }

    /// [`FreshMongo::start`] on a server reporting itself standalone: no transactions, so
    /// the sink's rounds go out without one (the comparison the scale benchmark prints).
    pub async fn start_standalone(one_way: Option<Duration>) -> FreshMongo {
        Self::start_with(one_way, MongoInstance::start_standalone()).await
    }

    async fn start_with(one_way: Option<Duration>, server: MongoInstance) -> FreshMongo {
        let (proxy, port) = match one_way {
            Some(delay) => {
                let target = ([127, 0, 0, 1], server.port).into();
                let p = LatencyProxy::start(target, delay).await.expect("proxy");
                let port = p.port();
                (Some(p), port)
            }
            None => (None, server.port),
        };
        FreshMongo {
            url: database_url(port),
            port,
            _proxy: proxy,
            _server: server,
        }
    }

    /// The URL of another new database on the same server (through the same proxy).
    pub fn another_database(&self) -> String {
        database_url(self.port)
    }
}

/// `mongodb://127.0.0.1:<port>/t_<uuid>?directConnection=true`.
fn database_url(port: u16) -> String {
    format!(
        "mongodb://127.0.0.1:{port}/{}?directConnection=true",
        unique_name()
    )
}
