//! An in-process fake of the Kubernetes API server's Lease routes (`leader.md` §12.2).
//!
//! It speaks the real REST protocol (routes, `Status` error bodies, `resourceVersion` and UID
//! preconditions, create-on-update, bearer tokens and RBAC rules, namespaces, `MicroTime`
//! precision, spec validation), each checked against a real kube-apiserver by `make test-k8s`,
//! so a real `kube::Client` can drive it, and it has fault knobs
//! that can be turned while a test runs, each optionally limited to one elector (told apart by
//! the `x-elector` header a test adds to each client; requests without it, e.g. from a spawned
//! binary configured by [`FakeApi::write_kubeconfig`], only see the everyone-knobs).

#![allow(
    clippy::result_large_err,
    reason = "a refused request's error is the HTTP response itself; test-only, never hot"
)]

use std::collections::{HashMap, HashSet};
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
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::PolicyRule;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::rules::{self, GROUP, User};

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
    namespaces: HashSet<String>,
    /// Bearer token → user. A request without a known token gets 401.
    users: HashMap<String, User>,
}

impl Store {
    /// What a create (by POST or by PUT) must pass: the namespace exists, the spec is valid.
    fn admit(
        &self,
        ns: &str,
        name: &str,
        lease: &Lease,
    ) -> Result<(), (u16, Option<LeaseSpec>, Response)> {
        if !self.namespaces.contains(ns) {
            return Err((404, None, namespace_not_found(ns)));
        }
        invalid(name, lease).map_or(Ok(()), Err)
    }
}

/// The 422 for a spec the server's validation rejects, if it does.
fn invalid(name: &str, lease: &Lease) -> Option<(u16, Option<LeaseSpec>, Response)> {
    let errors = rules::spec_errors(lease.spec.as_ref());
    if errors.is_empty() {
        return None;
    }
    let causes: Vec<serde_json::Value> = errors
        .iter()
        .map(|(field, value, why)| {
            serde_json::json!({
                "reason": "FieldValueInvalid",
                "message": format!("Invalid value: {value}: {why}"),
                "field": field,
            })
        })
        .collect();
    let details =
        serde_json::json!({"name": name, "group": GROUP, "kind": "Lease", "causes": causes});
    let msg = rules::invalid_message(name, &errors);
    Some((422, None, status(422, "Invalid", &msg, Some(details), None)))
}

/// Parses a Lease body as the server does: `MicroTime`s need six fractional digits.
fn decode(body: &[u8]) -> Result<Lease, Response> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| bad_request(&e.to_string()))?;
    if let Some(msg) = rules::micro_time_error(&value) {
        return Err(bad_request(&msg));
    }
    serde_json::from_value(value).map_err(|e| bad_request(&e.to_string()))
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
        let mut store = Store::default();
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
    /// environment (`leader.md` §7 pitfall 7), so start such a process without them.
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
    if let Err((_, r)) = s.authenticate_admin(&headers) {
        return r;
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
    if let Err((_, r)) = s.authenticate_admin(&headers) {
        return r;
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

    if let Err((code, r)) = s.authorize(&method, &ns, name.as_deref(), headers) {
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

    /// The user of the request's bearer token: 401 without a known one, as with anonymous
    /// authentication off.
    fn authenticate(&self, headers: &HeaderMap) -> Result<User, (u16, Response)> {
        let token = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        token
            .and_then(|t| lock(&self.store).users.get(t).cloned())
            .ok_or_else(|| (401, status(401, "Unauthorized", "Unauthorized", None, None)))
    }

    /// Namespaces are the administrator's business only, here.
    fn authenticate_admin(&self, headers: &HeaderMap) -> Result<(), (u16, Response)> {
        let user = self.authenticate(headers)?;
        if user.rules.is_none() {
            return Ok(());
        }
        let msg = format!(
            "namespaces is forbidden: User \"{}\" cannot manage resource \"namespaces\" in API group \"\" at the cluster scope",
            user.name
        );
        Err((403, status(403, "Forbidden", &msg, None, None)))
    }

    /// Authentication, then RBAC on the request's verb, namespace and Lease name.
    fn authorize(
        &self,
        method: &Method,
        ns: &str,
        name: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<(), (u16, Response)> {
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
        Err((403, status_response(403, "Forbidden", &msg, name, None)))
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
        match (method.clone(), name) {
            (Method::GET, Some(name)) => match store.leases.get(&key(name)) {
                Some(lease) => (200, None, json_response(200, lease)),
                None => (404, None, not_found(name)),
            },
            (Method::DELETE, Some(name)) => match store.leases.remove(&key(name)) {
                Some(gone) => {
                    let uid = gone.metadata.uid.unwrap_or_default();
                    let status = serde_json::json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","details":{"name":name,"group":GROUP,"kind":"leases","uid":uid}});
                    (200, None, json_response(200, &status))
                }
                None => (404, None, not_found(name)),
            },
            (Method::POST, None) => {
                let mut lease = match decode(body) {
                    Ok(l) => l,
                    Err(r) => return (400, None, r),
                };
                let Some(name) = lease.metadata.name.clone().filter(|n| !n.is_empty()) else {
                    let msg = "Lease.coordination.k8s.io \"\" is invalid: metadata.name: Required value: name or generateName is required";
                    return (422, None, status(422, "Invalid", msg, None, None));
                };
                if lease.metadata.resource_version.is_some() {
                    // Sic: the real server answers 500, with neither reason nor details.
                    let msg = "resourceVersion should not be set on objects to be created";
                    return (500, None, status(500, "", msg, None, None));
                }
                if let Err(r) = store.admit(ns, &name, &lease) {
                    return r;
                }
                if store.leases.contains_key(&key(&name)) {
                    let msg = format!("leases.{GROUP} \"{name}\" already exists");
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
                let lease = match decode(body) {
                    Ok(l) => l,
                    Err(r) => return (400, None, r),
                };
                if let Some(other) = lease.metadata.name.as_deref().filter(|n| *n != name) {
                    let msg = format!(
                        "the name of the object ({other}) does not match the name on the URL ({name})"
                    );
                    return (400, None, bad_request(&msg));
                }
                self.put(&mut store, ns, name, lease)
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

    /// PUT: the UID precondition first (it holds for a missing Lease too, whose UID is empty),
    /// then the `resourceVersion` precondition on an existing Lease. A missing Lease is
    /// created whatever `resourceVersion` the body carries (Leases allow create-on-update).
    fn put(
        &self,
        store: &mut Store,
        ns: &str,
        name: &str,
        mut lease: Lease,
    ) -> (u16, Option<LeaseSpec>, Response) {
        let key = (ns.to_owned(), name.to_owned());
        let current = store.leases.get(&key);
        let current_uid = current
            .and_then(|c| c.metadata.uid.clone())
            .unwrap_or_default();
        if let Some(uid) = lease.metadata.uid.as_deref().filter(|u| !u.is_empty())
            && uid != current_uid
        {
            let msg = format!(
                "Operation cannot be fulfilled on leases.{GROUP} \"{name}\": StorageError: invalid object, Code: 4, Key: /registry/leases/{ns}/{name}, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: UID in precondition: {uid}, UID in object meta: {current_uid}"
            );
            return (
                409,
                None,
                status_response(409, "Conflict", &msg, Some(name), None),
            );
        }
        let rv = lease
            .metadata
            .resource_version
            .clone()
            .filter(|rv| !rv.is_empty());
        let Some(current) = current else {
            if let Err(r) = store.admit(ns, name, &lease) {
                return r;
            }
            self.stamp_new(&mut lease, ns, name);
            let spec = lease.spec.clone().unwrap_or_default();
            let response = json_response(201, &lease);
            store.leases.insert(key, lease);
            return (201, Some(spec), response);
        };
        let Some(rv) = rv else {
            let why = "Invalid value: 0x0: must be specified for an update";
            let msg =
                format!("leases.{GROUP} \"{name}\" is invalid: metadata.resourceVersion: {why}");
            let cause = serde_json::json!({"reason": "FieldValueInvalid", "message": why, "field": "metadata.resourceVersion"});
            let details = serde_json::json!({"name": name, "group": GROUP, "kind": "leases", "causes": [cause]});
            return (422, None, status(422, "Invalid", &msg, Some(details), None));
        };
        if current.metadata.resource_version.as_deref() != Some(rv.as_str()) {
            let msg = format!(
                "Operation cannot be fulfilled on leases.{GROUP} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            );
            return (
                409,
                None,
                status_response(409, "Conflict", &msg, Some(name), None),
            );
        }
        if let Some(r) = invalid(name, &lease) {
            return r;
        }
        lease.metadata.name = Some(name.to_owned());
        lease.metadata.namespace = Some(ns.to_owned());
        lease.metadata.uid = current.metadata.uid.clone();
        lease.metadata.creation_timestamp = current.metadata.creation_timestamp.clone();
        lease.metadata.resource_version = Some(self.next_rv());
        let spec = lease.spec.clone().unwrap_or_default();
        let response = json_response(200, &lease);
        store.leases.insert(key, lease);
        (200, Some(spec), response)
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
    status(400, "BadRequest", msg, None, None)
}

/// A Kubernetes `Status` error body about a Lease, as the real API server sends it.
fn status_response(
    code: u16,
    reason: &str,
    message: &str,
    name: Option<&str>,
    retry_after_secs: Option<u32>,
) -> Response {
    let mut details = serde_json::json!({"group": GROUP, "kind": "leases"});
    if let Some(name) = name {
        details["name"] = name.into();
    }
    status(code, reason, message, Some(details), retry_after_secs)
}

fn namespace_details(name: &str) -> serde_json::Value {
    serde_json::json!({"name": name, "kind": "namespaces"})
}

fn namespace_not_found(ns: &str) -> Response {
    let msg = format!("namespaces \"{ns}\" not found");
    status(404, "NotFound", &msg, Some(namespace_details(ns)), None)
}

/// A `Status` error body with any `details` (none for 400 and 401, as on the real server).
fn status(
    code: u16,
    reason: &str,
    message: &str,
    details: Option<serde_json::Value>,
    retry_after_secs: Option<u32>,
) -> Response {
    let mut body = serde_json::json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "code": code,
    });
    if !reason.is_empty() {
        body["reason"] = reason.into();
    }
    if let Some(mut details) = details {
        if let Some(secs) = retry_after_secs {
            details["retryAfterSeconds"] = secs.into();
        }
        body["details"] = details;
    }
    let mut response = json_response(code, &body);
    if let Some(secs) = retry_after_secs
        && let Ok(v) = HeaderValue::from_str(&secs.to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    response
}
