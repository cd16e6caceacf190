//! A real kube-apiserver for tests, started by `tests/k8s/run.sh` (`make test-k8s`), which
//! exports where it is: `DM_K8S_KUBECONFIG` (the admin's kubeconfig: TLS with the test CA, a
//! bearer token of `system:masters`), `DM_K8S_NOROLE_TOKEN` (a valid token without any role)
//! `DM_K8S_VERSION` (the server's own version string) and `DM_K8S_CHART_RBAC` (the chart's
//! scheduler ServiceAccount, Role and RoleBinding, rendered by Helm).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{PostParams, WatchEvent, WatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};

/// The environment variable naming the admin kubeconfig; tests need it set.
pub const KUBECONFIG_VAR: &str = "DM_K8S_KUBECONFIG";

/// Handle on the running real server. Creating namespaces, roles and tokens goes through the
/// admin's credentials; tests use [`RealApi::config_with_token`] for anyone else.
#[derive(Clone)]
pub struct RealApi {
    path: PathBuf,
    kubeconfig: Kubeconfig,
    norole_token: String,
    version: String,
}

/// The chart's scheduler RBAC objects, as `helm install` renders them with schedulers on.
#[derive(Clone, Debug, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChartRbac {
    /// The schedulers' ServiceAccount.
    pub service_account: ServiceAccount,
    /// The Role: the exact rules the chart grants.
    pub role: Role,
    /// The RoleBinding of the Role to the ServiceAccount.
    pub role_binding: RoleBinding,
    /// The Lease names the Role lists in `resourceNames`.
    pub leases: Vec<String>,
}

impl RealApi {
    /// The chart's scheduler RBAC objects that `tests/k8s/run.sh` rendered.
    ///
    /// # Panics
    /// When `DM_K8S_CHART_RBAC` is not set or its file cannot be read.
    pub fn chart_rbac(&self) -> ChartRbac {
        let path = std::env::var("DM_K8S_CHART_RBAC")
            .unwrap_or_else(|_| panic!("DM_K8S_CHART_RBAC is not set: run `make test-k8s`"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {path}: {e}"))
    }

    /// Applies the chart's scheduler RBAC in `ns` and returns a token of its ServiceAccount.
    ///
    /// # Panics
    /// As [`chart_rbac`](Self::chart_rbac), or when the server refuses an object or the token.
    pub async fn chart_token(&self, ns: &str) -> (ChartRbac, String) {
        let rbac = self.chart_rbac();
        self.apply_rbac(ns, &rbac.service_account, &rbac.role, &rbac.role_binding)
            .await;
        let sa = rbac
            .service_account
            .metadata
            .name
            .clone()
            .expect("the chart names its ServiceAccount");
        let token = self.token(ns, &sa).await;
        (rbac, token)
    }

    /// The server `tests/k8s/run.sh` started.
    ///
    /// # Panics
    /// When the harness's variables are missing (the test was not run by `make test-k8s`) or
    /// the kubeconfig cannot be read: a real-server test must never pass without a server.
    pub fn from_env() -> Self {
        let path = std::env::var_os(KUBECONFIG_VAR)
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                panic!(
                    "{KUBECONFIG_VAR} is not set: real API server tests run under `make test-k8s`"
                )
            });
        let kubeconfig = Kubeconfig::read_from(&path)
            .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
        let var = |name: &str| std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set"));
        Self {
            path,
            kubeconfig,
            norole_token: var("DM_K8S_NOROLE_TOKEN"),
            version: var("DM_K8S_VERSION"),
        }
    }

    /// The server's version as it reports it, e.g. `v1.20.2`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// A valid token whose user no Role or ClusterRole names: every request gets 403.
    pub fn norole_token(&self) -> &str {
        &self.norole_token
    }

    /// The admin's kubeconfig file.
    pub fn kubeconfig_path(&self) -> &Path {
        &self.path
    }

    /// The admin's client config.
    ///
    /// # Panics
    /// If kube cannot build a config from the harness's kubeconfig.
    pub async fn admin_config(&self) -> kube::Config {
        kube::Config::from_custom_kubeconfig(self.kubeconfig.clone(), &KubeConfigOptions::default())
            .await
            .expect("a client config from the harness's kubeconfig")
    }

    /// The admin's config with `token` instead of the admin's: same server, same CA.
    ///
    /// # Panics
    /// If kube cannot build a config from the harness's kubeconfig.
    pub async fn config_with_token(&self, token: &str) -> kube::Config {
        let mut kubeconfig = self.kubeconfig.clone();
        for named in &mut kubeconfig.auth_infos {
            if let Some(auth) = named.auth_info.as_mut() {
                auth.token = Some(token.to_owned().into());
            }
        }
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("a client config with another token")
    }

    /// A client with the admin's credentials.
    ///
    /// # Panics
    /// If kube cannot build a config or a client from the harness's kubeconfig.
    pub async fn admin(&self) -> kube::Client {
        kube::Client::try_from(self.admin_config().await).expect("admin client")
    }

    /// Creates a fresh namespace `<prefix>-<random>` and returns its name.
    ///
    /// # Panics
    /// When the server refuses the namespace.
    pub async fn create_namespace(&self, prefix: &str) -> String {
        let name = format!("{prefix}-{:08x}", rand::random::<u32>());
        let ns = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(self.admin().await)
            .create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
        name
    }

    /// The stored Lease `ns/name`, read by the admin.
    ///
    /// # Panics
    /// When the read fails for any reason other than a missing Lease.
    pub async fn lease(&self, ns: &str, name: &str) -> Option<Lease> {
        Api::<Lease>::namespaced(self.admin().await, ns)
            .get_opt(name)
            .await
            .unwrap_or_else(|e| panic!("reading Lease {ns}/{name}: {e}"))
    }

    /// Starts watching Lease `ns/name` and records every version the server commits, with the
    /// (monotonic) time its event arrived, within a loopback round trip of the commit. Polling
    /// would miss versions that live for less than a poll, such as a release followed at once
    /// by a takeover.
    ///
    /// # Panics
    /// When the server refuses the watch.
    pub async fn watch_lease(&self, ns: &str, name: &str) -> LeaseWatch {
        let api: Api<Lease> = Api::namespaced(self.admin().await, ns);
        let wp = WatchParams::default().fields(&format!("metadata.name={name}"));
        let mut stream = api.watch(&wp, "0").await.expect("watch").boxed();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let task = tokio::spawn(async move {
            while let Some(Ok(event)) = stream.next().await {
                if let WatchEvent::Added(lease) | WatchEvent::Modified(lease) = event {
                    let spec = lease.spec.unwrap_or_default();
                    sink.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((Instant::now(), spec));
                }
            }
        });
        // Let the server register the watch before the caller acts.
        tokio::time::sleep(Duration::from_millis(100)).await;
        LeaseWatch { seen, task }
    }

    /// Creates ServiceAccount `sa` in `ns`, binds `role` to it (named like the account) and
    /// returns a token for it from the TokenRequest API.
    ///
    /// # Panics
    /// When the server refuses an object or the token.
    pub async fn service_account_with_role(
        &self,
        ns: &str,
        sa: &str,
        rules: Vec<PolicyRule>,
    ) -> String {
        let meta = |name: &str| ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(ns.to_owned()),
            ..ObjectMeta::default()
        };
        let role = Role {
            metadata: meta(sa),
            rules: Some(rules),
        };
        let binding = RoleBinding {
            metadata: meta(sa),
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "Role".into(),
                name: sa.to_owned(),
            },
            subjects: Some(vec![Subject {
                kind: "ServiceAccount".into(),
                name: sa.to_owned(),
                namespace: Some(ns.to_owned()),
                ..Subject::default()
            }]),
        };
        let account = ServiceAccount {
            metadata: meta(sa),
            ..ServiceAccount::default()
        };
        self.apply_rbac(ns, &account, &role, &binding).await;
        self.token(ns, sa).await
    }

    /// Creates a ServiceAccount, Role and RoleBinding in `ns` as given (their namespaces are
    /// set to `ns`, and so is the binding's subject's).
    ///
    /// # Panics
    /// When the server refuses an object (e.g. one already exists).
    pub async fn apply_rbac(
        &self,
        ns: &str,
        account: &ServiceAccount,
        role: &Role,
        binding: &RoleBinding,
    ) {
        let client = self.admin().await;
        let pp = PostParams::default();
        let mut account = account.clone();
        account.metadata.namespace = Some(ns.to_owned());
        let mut role = role.clone();
        role.metadata.namespace = Some(ns.to_owned());
        let mut binding = binding.clone();
        binding.metadata.namespace = Some(ns.to_owned());
        for subject in binding.subjects.iter_mut().flatten() {
            subject.namespace = Some(ns.to_owned());
        }
        Api::<ServiceAccount>::namespaced(client.clone(), ns)
            .create(&pp, &account)
            .await
            .expect("create ServiceAccount");
        Api::<Role>::namespaced(client.clone(), ns)
            .create(&pp, &role)
            .await
            .expect("create Role");
        Api::<RoleBinding>::namespaced(client, ns)
            .create(&pp, &binding)
            .await
            .expect("create RoleBinding");
    }

    /// A token for ServiceAccount `ns/sa` from the TokenRequest API (one hour).
    ///
    /// # Panics
    /// When the server refuses the TokenRequest or answers it without a token.
    pub async fn token(&self, ns: &str, sa: &str) -> String {
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: Vec::new(),
                expiration_seconds: Some(3600),
                ..TokenRequestSpec::default()
            },
            ..TokenRequest::default()
        };
        Api::<ServiceAccount>::namespaced(self.admin().await, ns)
            .create_token_request(sa, &PostParams::default(), &request)
            .await
            .expect("TokenRequest")
            .status
            .expect("TokenRequest status")
            .token
    }

    /// Writes a kubeconfig for `token` with `namespace` as default, for a spawned binary run
    /// with `KUBECONFIG=<path>` (start it without `HTTPS_PROXY`).
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn write_kubeconfig(
        &self,
        path: &Path,
        namespace: &str,
        token: &str,
    ) -> std::io::Result<()> {
        let mut kubeconfig = self.kubeconfig.clone();
        for named in &mut kubeconfig.auth_infos {
            if let Some(auth) = named.auth_info.as_mut() {
                auth.token = Some(token.to_owned().into());
            }
        }
        for named in &mut kubeconfig.contexts {
            if let Some(context) = named.context.as_mut() {
                context.namespace = Some(namespace.to_owned());
            }
        }
        // The token is a secret: serialize it on purpose, for this test file only.
        let mut value = serde_json::to_value(&kubeconfig).map_err(std::io::Error::other)?;
        if let Some(users) = value.get_mut("users").and_then(|u| u.as_array_mut()) {
            for user in users {
                user["user"]["token"] = token.into();
            }
        }
        std::fs::write(
            path,
            serde_json::to_vec_pretty(&value).map_err(std::io::Error::other)?,
        )
    }
}

/// The versions of one Lease seen by [`RealApi::watch_lease`]; stops watching when dropped.
pub struct LeaseWatch {
    seen: Arc<Mutex<Vec<(Instant, LeaseSpec)>>>,
    task: JoinHandle<()>,
}

impl LeaseWatch {
    /// Every version so far, in commit order, as (when its event arrived, spec).
    pub fn versions(&self) -> Vec<(Instant, LeaseSpec)> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl Drop for LeaseWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}
