//! An in-process fake of the Kubernetes API server's Lease routes, for election tests that need
//! faults a real server cannot be made to produce on demand.
//!
//! It speaks the real REST protocol (routes, `Status` error bodies, `resourceVersion` and UID
//! preconditions, create-on-update, bearer tokens and RBAC rules, namespaces, `MicroTime`
//! precision, spec validation), each checked against a real kube-apiserver by `make test-k8s`,
//! so a real `kube::Client` can drive it, and it has fault knobs
//! that can be turned while a test runs, each optionally limited to one elector (told apart by
//! the `x-elector` header a test adds to each client; requests without it, e.g. from a spawned
//! binary configured by [`FakeApi::write_kubeconfig`], only see the everyone-knobs).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::{HeaderMap, Method, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::PolicyRule;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::rules::{self, User};
use super::status::{
    bad_request, json_response, namespace_details, namespace_not_found, status, status_response,
};
use super::store::{Answer, Refusal, Store};

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

struct Shared {
    store: Mutex<Store>,
    faults: Mutex<Faults>,
    log: Mutex<Vec<Entry>>,
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
    admin_token: String,
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
        let admin_token = format!("admin-{}", uuid::Uuid::new_v4().simple());
        let mut store = Store {
            // Opaque and not small: clients must not assume anything about it.
            next_rv: rand::random_range(100_000..10_000_000),
            ..Store::default()
        };
        store.namespaces.insert("default".to_owned());
        store.users.insert(
            admin_token.clone(),
            User {
                name: "admin".to_owned(),
                rules: None,
            },
        );
        let shared = Arc::new(Shared {
            store: Mutex::new(store),
            faults: Mutex::new(Faults::default()),
            log: Mutex::new(Vec::new()),
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
            .route("/api/v1/namespaces", post(post_namespace))
            .route("/api/v1/namespaces/{ns}", get(get_namespace))
            .with_state(shared.clone());
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake API server");
        let addr = listener.local_addr().expect("local addr");
        let stop = CancellationToken::new();
        tokio::spawn(accept_loop(listener, router, stop.clone()));
        Self {
            addr,
            admin_token,
            shared,
            stop,
        }
    }

    /// The token of the fake's administrator, allowed everything (like `system:masters`).
    /// Every request needs a known bearer token; without one the fake answers 401.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// Creates namespace `ns` (idempotent). Only `default` exists at start, as on a fresh
    /// cluster; a Lease in a missing namespace cannot be created (404).
    pub fn create_namespace(&self, ns: &str) {
        lock(&self.shared.store).namespaces.insert(ns.to_owned());
    }

    /// Adds a user authenticated by `token`, with no permissions until [`bind`](Self::bind).
    pub fn add_user(&self, token: &str, name: &str) {
        lock(&self.shared.store).users.insert(
            token.to_owned(),
            User {
                name: name.to_owned(),
                rules: Some(Vec::new()),
            },
        );
    }

    /// Grants `token`'s user the Lease permissions of `rules` in `namespace`, as a Role bound
    /// by a RoleBinding would. Unknown tokens are ignored.
    pub fn bind(&self, token: &str, namespace: &str, rules: &[PolicyRule]) {
        let mut store = lock(&self.shared.store);
        if let Some(granted) = store.users.get_mut(token).and_then(|u| u.rules.as_mut()) {
            granted.extend(rules.iter().map(|r| (namespace.to_owned(), r.clone())));
        }
    }

    /// The server's base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A kubeconfig (YAML) whose current context points at this server over plain HTTP, with
    /// the admin token and `namespace` as the default namespace, which it creates.
    ///
    /// kube's `Config::infer()` (what [`crate::start`] uses) reads it when `KUBECONFIG` names
    /// it. A kubeconfig-based config also takes `HTTPS_PROXY`/`https_proxy` from the
    /// environment and would send the requests through that proxy instead of to the fake, so
    /// start such a process without them.
    pub fn kubeconfig(&self, namespace: &str) -> String {
        self.create_namespace(namespace);
        format!(
            "apiVersion: v1
kind: Config
clusters:
  - name: fake
    cluster:
      server: {url}
users:
  - name: fake
    user:
      token: {token}
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
            token = self.admin_token,
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

async fn post_namespace(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    if let Err(refusal) = s.authenticate_admin(&headers) {
        return refusal.into_response();
    }
    let Some(name) = serde_json::from_slice::<Namespace>(&body)
        .ok()
        .and_then(|n| n.metadata.name)
    else {
        return bad_request("a Namespace with a name is required");
    };
    let mut store = lock(&s.store);
    if !store.namespaces.insert(name.clone()) {
        let msg = format!("namespaces \"{name}\" already exists");
        return status(
            409,
            "AlreadyExists",
            &msg,
            Some(namespace_details(&name)),
            None,
        );
    }
    json_response(201, &namespace(&name))
}

async fn get_namespace(
    State(s): State<Arc<Shared>>,
    Path(ns): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(refusal) = s.authenticate_admin(&headers) {
        return refusal.into_response();
    }
    if lock(&s.store).namespaces.contains(&ns) {
        json_response(200, &namespace(&ns))
    } else {
        namespace_not_found(&ns)
    }
}

fn namespace(name: &str) -> Namespace {
    let mut ns = Namespace::default();
    ns.metadata.name = Some(name.to_owned());
    ns
}
/// The fault knobs that apply to one request, read (and counted down) once when it arrives.
struct Knobs {
    partition: Option<Partition>,
    latency: Option<Duration>,
    throttle: Option<(u16, u32)>,
    drop_now: bool,
    commit_504: bool,
}

/// Serves one Lease request: faults first, then authentication and RBAC, then the store.
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
    let knobs = s.knobs(&method, elector.as_deref());
    match knobs.partition {
        Some(Partition::Hang) => return std::future::pending().await,
        Some(Partition::Drop) => return drop_connection(kill).await,
        Some(Partition::Unavailable) => {
            return s.logged(method, elector, Answer::read(unavailable()));
        }
        None => {}
    }
    if let Some(latency) = knobs.latency {
        tokio::time::sleep(latency).await;
    }
    if knobs.drop_now {
        return drop_connection(kill).await;
    }
    if let Some((code, retry_after)) = knobs.throttle {
        return s.logged(method, elector, Answer::read(throttled(code, retry_after)));
    }
    let answer = match s.authorize(&method, &ns, name.as_deref(), headers) {
        Ok(()) => lock(&s.store).apply(&method, &ns, name.as_deref(), &body),
        Err(refusal) => refusal.into(),
    };
    let answer = if knobs.commit_504 && answer.committed.is_some() {
        Answer {
            response: gateway_timeout(),
            ..answer
        }
    } else {
        answer
    };
    s.logged(method, elector, answer)
}

async fn drop_connection(kill: &ConnKill) -> Response {
    kill.0.cancel();
    std::future::pending().await
}

/// The 503 a partitioned elector gets.
fn unavailable() -> Response {
    status_response(
        503,
        "ServiceUnavailable",
        "the server is currently unable to handle the request",
        None,
        Some(1),
    )
}

/// The 429 or 503 of the throttle knob, with its `Retry-After`.
fn throttled(code: u16, retry_after_secs: u32) -> Response {
    let reason = if code == 429 {
        "TooManyRequests"
    } else {
        "ServiceUnavailable"
    };
    status_response(
        code,
        reason,
        "please try again later",
        None,
        Some(retry_after_secs),
    )
}

/// The 504 a timing-out proxy sends for a write that committed behind it.
fn gateway_timeout() -> Response {
    status_response(
        504,
        "Timeout",
        "the server was unable to return a response in the time allotted",
        None,
        None,
    )
}

impl Shared {
    /// The knobs for a request from `elector` (the elector's own before the everyone-knobs).
    fn knobs(&self, method: &Method, elector: Option<&str>) -> Knobs {
        let mut f = lock(&self.faults);
        Knobs {
            partition: elector.and_then(|e| f.partition.get(e).copied()),
            latency: Faults::get(&f.latency, elector).copied(),
            throttle: Faults::get(&f.throttle, elector).copied(),
            drop_now: Faults::take(&mut f.drop_connection, elector),
            commit_504: *method == Method::PUT && Faults::take(&mut f.commit_then_504, elector),
        }
    }

    /// Records the request in the log and returns its response.
    fn logged(&self, method: Method, elector: Option<String>, answer: Answer) -> Response {
        lock(&self.log).push(Entry {
            at: Instant::now(),
            method,
            elector,
            status: answer.response.status().as_u16(),
            committed: answer.committed,
        });
        answer.response
    }

    /// The user of the request's bearer token: 401 without a known one, as with anonymous
    /// authentication off.
    fn authenticate(&self, headers: &HeaderMap) -> Result<User, Refusal> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        token
            .and_then(|t| lock(&self.store).users.get(t).cloned())
            .ok_or_else(|| status(401, "Unauthorized", "Unauthorized", None, None).into())
    }

    /// Namespaces are the administrator's business only, here.
    fn authenticate_admin(&self, headers: &HeaderMap) -> Result<(), Refusal> {
        let user = self.authenticate(headers)?;
        if user.rules.is_none() {
            return Ok(());
        }
        let msg = format!(
            "namespaces is forbidden: User \"{}\" cannot manage resource \"namespaces\" in API group \"\" at the cluster scope",
            user.name
        );
        Err(status(403, "Forbidden", &msg, None, None).into())
    }

    /// Authentication, then RBAC on the request's verb, namespace and Lease name.
    fn authorize(
        &self,
        method: &Method,
        ns: &str,
        name: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<(), Refusal> {
        let user = self.authenticate(headers)?;
        let verb = match *method {
            Method::GET => "get",
            Method::POST => "create",
            Method::PUT => "update",
            Method::DELETE => "delete",
            _ => "unknown",
        };
        if user.may(verb, ns, name) {
            return Ok(());
        }
        let msg = rules::forbidden_message(&user.name, verb, ns, name);
        Err(status_response(403, "Forbidden", &msg, name, None).into())
    }
}
