//! An in-process fake of the Kubernetes API server's Lease routes (`leader.md` §12.2).
//!
//! It speaks the real REST protocol (routes, `Status` error bodies, `resourceVersion`
//! preconditions, create-on-update) so a real `kube::Client` can drive it, and it has fault knobs
//! that can be turned while a test runs, each optionally limited to one elector (told apart by
//! the `x-elector` header a test adds to each client; requests without it, e.g. from a spawned
//! binary configured by [`FakeApi::write_kubeconfig`], only see the everyone-knobs).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// What a partitioned elector experiences.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Partition {
    /// Requests are never answered (the client's timeout fires).
    Hang,
    /// The connection is closed without a response.
    Drop,
    /// 503 `ServiceUnavailable`.
    Unavailable,
}

/// Fault knobs. `None` as an elector means "everyone".
#[derive(Clone, Debug, Default)]
struct Faults {
    latency: HashMap<Option<String>, Duration>,
    /// (status, Retry-After seconds) for everyone matching.
    throttle: HashMap<Option<String>, (u16, u32)>,
    /// Remaining PUTs to commit and then answer 504.
    commit_then_504: HashMap<Option<String>, usize>,
    /// Remaining requests whose connection is dropped before they are handled.
    drop_connection: HashMap<Option<String>, usize>,
    partition: HashMap<String, Partition>,
}

impl Faults {
    fn get<'a, T>(map: &'a HashMap<Option<String>, T>, elector: Option<&str>) -> Option<&'a T> {
        elector
            .and_then(|e| map.get(&Some(e.to_owned())))
            .or_else(|| map.get(&None))
    }

    /// Consumes one use of a counted knob, the elector's own before the everyone-knob.
    fn take(map: &mut HashMap<Option<String>, usize>, elector: Option<&str>) -> bool {
        for key in [elector.map(str::to_owned), None] {
            if let Some(n) = map.get_mut(&key)
                && *n > 0
            {
                *n -= 1;
                return true;
            }
        }
        false
    }
}

/// One request as the fake saw it.
#[derive(Clone, Debug)]
pub struct Entry {
    /// When the request was answered (for writes: when it committed).
    pub at: Instant,
    /// The request's method (GET, POST, PUT or DELETE).
    pub method: Method,
    /// The request's `x-elector` header, if it had one.
    pub elector: Option<String>,
    /// HTTP status sent, or 0 if the connection was dropped / the request hung.
    pub status: u16,
    /// The spec stored by this request, if it changed the store.
    pub committed: Option<LeaseSpec>,
}

#[derive(Default)]
struct Store {
    leases: HashMap<(String, String), Lease>,
}

struct Shared {
    store: Mutex<Store>,
    faults: Mutex<Faults>,
    log: Mutex<Vec<Entry>>,
    next_rv: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not hide the real failure behind a poison error.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Closes the connection a request arrived on (the `drop_connection` / `Partition::Drop` knobs).
#[derive(Clone)]
struct ConnKill(CancellationToken);

/// The running fake. Stops accepting when dropped.
pub struct FakeApi {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: CancellationToken,
}

impl Drop for FakeApi {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl FakeApi {
    /// Binds 127.0.0.1:0 and serves until dropped.
    ///
    /// # Panics
    /// If no local port can be bound, or outside a tokio runtime (it spawns the accept loop).
    pub async fn start() -> Self {
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::default()),
            faults: Mutex::new(Faults::default()),
            log: Mutex::new(Vec::new()),
            // Opaque and not small: clients must not assume anything about it.
            next_rv: AtomicU64::new(rand::random_range(100_000..10_000_000)),
        });
        let router = Router::new()
            .route(
                "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases/{name}",
                get(get_lease).put(put_lease).delete(delete_lease),
            )
            .route(
                "/apis/coordination.k8s.io/v1/namespaces/{ns}/leases",
                post(post_lease),
            )
            .with_state(shared.clone());
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake API server");
        let addr = listener.local_addr().expect("local addr");
        let stop = CancellationToken::new();
        tokio::spawn(accept_loop(listener, router, stop.clone()));
        Self { addr, shared, stop }
    }

    /// The server's base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig (YAML) whose current context points at this server over plain HTTP, with
    /// no credentials and `namespace` as the default namespace.
    ///
    /// kube's `Config::infer()` (what [`crate::start`] uses) reads it when `KUBECONFIG` names
    /// it. A kubeconfig-based config also takes `HTTPS_PROXY`/`https_proxy` from the
    /// environment (`leader.md` §7 pitfall 7), so start such a process without them.
    pub fn kubeconfig(&self, namespace: &str) -> String {
        format!(
            "apiVersion: v1
kind: Config
clusters:
  - name: fake
    cluster:
      server: {url}
users:
  - name: fake
    user: {{}}
contexts:
  - name: fake
    context:
      cluster: fake
      user: fake
      namespace: {namespace}
current-context: fake
preferences: {{}}
",
            url = self.url(),
        )
    }

    /// Writes [`kubeconfig`](Self::kubeconfig) for `namespace` to `path`, for a spawned binary
    /// run with `KUBECONFIG=<path>`.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn write_kubeconfig(&self, path: &std::path::Path, namespace: &str) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig(namespace))
    }

    /// Delay every answer (to `elector`, or to everyone).
    pub fn set_latency(&self, elector: Option<&str>, latency: Duration) {
        let mut f = lock(&self.shared.faults);
        if latency.is_zero() {
            f.latency.remove(&elector.map(str::to_owned));
        } else {
            f.latency.insert(elector.map(str::to_owned), latency);
        }
    }

    /// Answer `status` (429 or 503) with `Retry-After`, until cleared with `clear_throttle`.
    pub fn throttle(&self, elector: Option<&str>, status: u16, retry_after_secs: u32) {
        lock(&self.shared.faults)
            .throttle
            .insert(elector.map(str::to_owned), (status, retry_after_secs));
    }

    /// Stops the throttling `throttle` started (for `elector`, or the everyone-knob).
    pub fn clear_throttle(&self, elector: Option<&str>) {
        lock(&self.shared.faults)
            .throttle
            .remove(&elector.map(str::to_owned));
    }

    /// Apply the next `n` PUTs (from `elector`), then answer 504 as a timing-out proxy would.
    pub fn commit_then_504(&self, elector: Option<&str>, n: usize) {
        lock(&self.shared.faults)
            .commit_then_504
            .insert(elector.map(str::to_owned), n);
    }

    /// Close the connection of the next `n` requests (from `elector`) without answering.
    pub fn drop_connections(&self, elector: Option<&str>, n: usize) {
        lock(&self.shared.faults)
            .drop_connection
            .insert(elector.map(str::to_owned), n);
    }

    /// Cut one elector off from the API server; the others are unaffected.
    pub fn partition(&self, elector: &str, how: Partition) {
        lock(&self.shared.faults)
            .partition
            .insert(elector.to_owned(), how);
    }

    /// Ends `elector`'s partition.
    pub fn heal(&self, elector: &str) {
        lock(&self.shared.faults).partition.remove(elector);
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        *lock(&self.shared.faults) = Faults::default();
    }

    /// The stored Lease `ns/name`, if it exists.
    pub fn lease(&self, ns: &str, name: &str) -> Option<Lease> {
        lock(&self.shared.store)
            .leases
            .get(&(ns.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Every request answered so far, in order.
    pub fn log(&self) -> Vec<Entry> {
        lock(&self.shared.log).clone()
    }
}

async fn accept_loop(listener: TcpListener, router: Router, stop: CancellationToken) {
    loop {
        let stream = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(_) => continue,
            },
        };
        let kill = CancellationToken::new();
        let service =
            TowerToHyperService::new(router.clone().layer(Extension(ConnKill(kill.clone()))));
        let stop = stop.clone();
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service);
            // Dropping the connection future closes the socket without a response.
            tokio::select! {
                _ = conn => {}
                () = kill.cancelled() => {}
                () = stop.cancelled() => {}
            }
        });
    }
}

async fn get_lease(
    State(s): State<Arc<Shared>>,
    Extension(kill): Extension<ConnKill>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    handle(
        &s,
        &kill,
        Method::GET,
        ns,
        Some(name),
        &headers,
        Bytes::new(),
    )
    .await
}

async fn put_lease(
    State(s): State<Arc<Shared>>,
    Extension(kill): Extension<ConnKill>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&s, &kill, Method::PUT, ns, Some(name), &headers, body).await
}

async fn delete_lease(
    State(s): State<Arc<Shared>>,
    Extension(kill): Extension<ConnKill>,
    Path((ns, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    handle(
        &s,
        &kill,
        Method::DELETE,
        ns,
        Some(name),
        &headers,
        Bytes::new(),
    )
    .await
}

async fn post_lease(
    State(s): State<Arc<Shared>>,
    Extension(kill): Extension<ConnKill>,
    Path(ns): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(&s, &kill, Method::POST, ns, None, &headers, body).await
}

async fn handle(
    s: &Shared,
    kill: &ConnKill,
    method: Method,
    ns: String,
    name: Option<String>,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let elector = headers
        .get("x-elector")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let e = elector.as_deref();

    let (partition, latency, throttle, drop_now, commit_504) = {
        let mut f = lock(&s.faults);
        let partition = e.and_then(|e| f.partition.get(e).copied());
        let latency = Faults::get(&f.latency, e).copied();
        let throttle = Faults::get(&f.throttle, e).copied();
        let drop_now = Faults::take(&mut f.drop_connection, e);
        let commit_504 = method == Method::PUT && Faults::take(&mut f.commit_then_504, e);
        (partition, latency, throttle, drop_now, commit_504)
    };
    match partition {
        Some(Partition::Hang) => return std::future::pending().await,
        Some(Partition::Drop) => return drop_connection(kill).await,
        Some(Partition::Unavailable) => {
            let r = status_response(
                503,
                "ServiceUnavailable",
                "the server is currently unable to handle the request",
                None,
                Some(1),
            );
            return s.logged(method, elector, 503, None, r);
        }
        None => {}
    }
    if let Some(latency) = latency {
        tokio::time::sleep(latency).await;
    }
    if drop_now {
        return drop_connection(kill).await;
    }
    if let Some((code, retry_after)) = throttle {
        let reason = if code == 429 {
            "TooManyRequests"
        } else {
            "ServiceUnavailable"
        };
        let r = status_response(
            code,
            reason,
            "please try again later",
            None,
            Some(retry_after),
        );
        return s.logged(method, elector, code, None, r);
    }

    let (code, committed, response) = s.apply(&method, &ns, name.as_deref(), &body);
    if commit_504 && committed.is_some() {
        let r = status_response(
            504,
            "Timeout",
            "the server was unable to return a response in the time allotted",
            None,
            None,
        );
        return s.logged(method, elector, 504, committed, r);
    }
    s.logged(method, elector, code, committed, response)
}

async fn drop_connection(kill: &ConnKill) -> Response {
    kill.0.cancel();
    std::future::pending().await
}

impl Shared {
    fn logged(
        &self,
        method: Method,
        elector: Option<String>,
        status: u16,
        committed: Option<LeaseSpec>,
        response: Response,
    ) -> Response {
        lock(&self.log).push(Entry {
            at: Instant::now(),
            method,
            elector,
            status,
            committed,
        });
        response
    }

    fn next_rv(&self) -> String {
        self.next_rv.fetch_add(1, Ordering::SeqCst).to_string()
    }

    /// The real server's Lease semantics. Returns (status, committed spec, response).
    fn apply(
        &self,
        method: &Method,
        ns: &str,
        name: Option<&str>,
        body: &[u8],
    ) -> (u16, Option<LeaseSpec>, Response) {
        let mut store = lock(&self.store);
        let key = |n: &str| (ns.to_owned(), n.to_owned());
        let parse = |body: &[u8]| serde_json::from_slice::<Lease>(body);
        match (method.clone(), name) {
            (Method::GET, Some(name)) => match store.leases.get(&key(name)) {
                Some(lease) => (200, None, json_response(200, lease)),
                None => (404, None, not_found(name)),
            },
            (Method::DELETE, Some(name)) => match store.leases.remove(&key(name)) {
                Some(_) => {
                    let status = serde_json::json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","details":{"name":name,"group":"coordination.k8s.io","kind":"leases"}});
                    (200, None, json_response(200, &status))
                }
                None => (404, None, not_found(name)),
            },
            (Method::POST, None) => {
                let mut lease = match parse(body) {
                    Ok(l) => l,
                    Err(e) => return (400, None, bad_request(&e.to_string())),
                };
                let Some(name) = lease.metadata.name.clone().filter(|n| !n.is_empty()) else {
                    return (
                        422,
                        None,
                        status_response(
                            422,
                            "Invalid",
                            "Lease.coordination.k8s.io \"\" is invalid: metadata.name: Required value: name or generateName is required",
                            None,
                            None,
                        ),
                    );
                };
                if lease.metadata.resource_version.is_some() {
                    return (
                        500,
                        None,
                        status_response(
                            500,
                            "InternalError",
                            "resourceVersion should not be set on objects to be created",
                            Some(&name),
                            None,
                        ),
                    );
                }
                if store.leases.contains_key(&key(&name)) {
                    let msg = format!("leases.coordination.k8s.io \"{name}\" already exists");
                    return (
                        409,
                        None,
                        status_response(409, "AlreadyExists", &msg, Some(&name), None),
                    );
                }
                self.stamp_new(&mut lease, ns, &name);
                let spec = lease.spec.clone().unwrap_or_default();
                let response = json_response(201, &lease);
                store.leases.insert(key(&name), lease);
                (201, Some(spec), response)
            }
            (Method::PUT, Some(name)) => {
                let mut lease = match parse(body) {
                    Ok(l) => l,
                    Err(e) => return (400, None, bad_request(&e.to_string())),
                };
                if lease.metadata.name.as_deref().is_some_and(|n| n != name) {
                    return (
                        400,
                        None,
                        bad_request("the name of the object does not match the name on the URL"),
                    );
                }
                let rv = lease
                    .metadata
                    .resource_version
                    .clone()
                    .filter(|rv| !rv.is_empty());
                match (store.leases.get(&key(name)), rv) {
                    (Some(_), None) => {
                        let msg = format!(
                            "Lease.coordination.k8s.io \"{name}\" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be specified for an update"
                        );
                        (
                            422,
                            None,
                            status_response(422, "Invalid", &msg, Some(name), None),
                        )
                    }
                    (Some(current), Some(rv))
                        if current.metadata.resource_version.as_deref() != Some(rv.as_str()) =>
                    {
                        let msg = format!(
                            "Operation cannot be fulfilled on leases.coordination.k8s.io \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
                        );
                        (
                            409,
                            None,
                            status_response(409, "Conflict", &msg, Some(name), None),
                        )
                    }
                    (Some(current), Some(_)) => {
                        lease.metadata.name = Some(name.to_owned());
                        lease.metadata.namespace = Some(ns.to_owned());
                        lease.metadata.uid = current.metadata.uid.clone();
                        lease.metadata.creation_timestamp =
                            current.metadata.creation_timestamp.clone();
                        lease.metadata.resource_version = Some(self.next_rv());
                        let spec = lease.spec.clone().unwrap_or_default();
                        let response = json_response(200, &lease);
                        store.leases.insert(key(name), lease);
                        (200, Some(spec), response)
                    }
                    (None, Some(_)) => (404, None, not_found(name)),
                    (None, None) => {
                        // Leases allow create-on-update.
                        self.stamp_new(&mut lease, ns, name);
                        let spec = lease.spec.clone().unwrap_or_default();
                        let response = json_response(201, &lease);
                        store.leases.insert(key(name), lease);
                        (201, Some(spec), response)
                    }
                }
            }
            _ => (
                405,
                None,
                status_response(
                    405,
                    "MethodNotAllowed",
                    "the server does not allow this method on the requested resource",
                    None,
                    None,
                ),
            ),
        }
    }

    fn stamp_new(&self, lease: &mut Lease, ns: &str, name: &str) {
        lease.metadata.name = Some(name.to_owned());
        lease.metadata.namespace = Some(ns.to_owned());
        lease.metadata.uid = Some(uuid::Uuid::new_v4().to_string());
        lease.metadata.creation_timestamp = Some(Time(truncate_to_seconds(Timestamp::now())));
        lease.metadata.resource_version = Some(self.next_rv());
    }
}

fn truncate_to_seconds(ts: Timestamp) -> Timestamp {
    Timestamp::from_second(ts.as_second()).unwrap_or(ts)
}

fn json_response(code: u16, body: &impl serde::Serialize) -> Response {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        bytes,
    )
        .into_response()
}

fn not_found(name: &str) -> Response {
    let msg = format!("leases.coordination.k8s.io \"{name}\" not found");
    status_response(404, "NotFound", &msg, Some(name), None)
}

fn bad_request(msg: &str) -> Response {
    status_response(400, "BadRequest", msg, None, None)
}

/// A Kubernetes `Status` error body, as the real API server sends it.
fn status_response(
    code: u16,
    reason: &str,
    message: &str,
    name: Option<&str>,
    retry_after_secs: Option<u32>,
) -> Response {
    let mut details = serde_json::json!({"group": "coordination.k8s.io", "kind": "leases"});
    if let Some(name) = name {
        details["name"] = name.into();
    }
    if let Some(secs) = retry_after_secs {
        details["retryAfterSeconds"] = secs.into();
    }
    let body = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details,
        "code": code,
    });
    let mut response = json_response(code, &body);
    if let Some(secs) = retry_after_secs
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}
