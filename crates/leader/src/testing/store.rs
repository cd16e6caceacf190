//! The fake API server's stored objects and the real server's Lease semantics on them: reads,
//! deletes, creates (by POST, or by a PUT of a missing Lease) and preconditioned updates.

use std::collections::{HashMap, HashSet};

use axum::http::Method;
use axum::response::{IntoResponse, Response};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;

use super::rules::{self, GROUP, User};
use super::status::{
    bad_request, json_response, namespace_not_found, not_found, status, status_response,
};

/// What the fake stores: Leases by (namespace, name), namespaces and the users of its tokens.
#[derive(Default)]
pub(super) struct Store {
    pub leases: HashMap<(String, String), Lease>,
    pub namespaces: HashSet<String>,
    /// Bearer token → user. A request without a known token gets 401.
    pub users: HashMap<String, User>,
    /// The next `resourceVersion`: opaque and not small, so clients assume nothing about it.
    pub next_rv: u64,
}

/// The answer to one request: the response, and the spec it stored if it changed the store.
pub(super) struct Answer {
    pub response: Response,
    pub committed: Option<LeaseSpec>,
}

impl Answer {
    /// An answer that changed nothing.
    pub fn read(response: Response) -> Self {
        Self {
            response,
            committed: None,
        }
    }

    /// The answer to a write that stored `lease`: `code` with the stored object.
    fn stored(code: u16, lease: &Lease) -> Self {
        Self {
            response: json_response(code, lease),
            committed: Some(lease.spec.clone().unwrap_or_default()),
        }
    }
}

/// A refused request's error response. Boxed: a `Response` is large and refusals are the rare
/// path of every check.
pub(super) struct Refusal(Box<Response>);

impl From<Response> for Refusal {
    fn from(response: Response) -> Self {
        Self(Box::new(response))
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        *self.0
    }
}

impl From<Refusal> for Answer {
    fn from(refusal: Refusal) -> Self {
        Self::read(refusal.into_response())
    }
}

fn key(ns: &str, name: &str) -> (String, String) {
    (ns.to_owned(), name.to_owned())
}

impl Store {
    /// The real server's answer to an authorized Lease request.
    pub fn apply(&mut self, method: &Method, ns: &str, name: Option<&str>, body: &[u8]) -> Answer {
        let answer = match (method.clone(), name) {
            (Method::GET, Some(name)) => self.get(ns, name),
            (Method::DELETE, Some(name)) => self.delete(ns, name),
            (Method::POST, None) => self.post(ns, body),
            (Method::PUT, Some(name)) => self.put(ns, name, body),
            _ => Err(status_response(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource",
                None,
                None,
            )
            .into()),
        };
        answer.unwrap_or_else(Answer::from)
    }

    /// GET: the stored Lease.
    fn get(&self, ns: &str, name: &str) -> Result<Answer, Refusal> {
        let lease = self
            .leases
            .get(&key(ns, name))
            .ok_or_else(|| not_found(name))?;
        Ok(Answer::read(json_response(200, lease)))
    }

    /// DELETE: removes the Lease and answers with a `Success` status naming its UID.
    fn delete(&mut self, ns: &str, name: &str) -> Result<Answer, Refusal> {
        let gone = self
            .leases
            .remove(&key(ns, name))
            .ok_or_else(|| not_found(name))?;
        let uid = gone.metadata.uid.unwrap_or_default();
        let status = serde_json::json!({"kind":"Status","apiVersion":"v1","metadata":{},"status":"Success","details":{"name":name,"group":GROUP,"kind":"leases","uid":uid}});
        Ok(Answer::read(json_response(200, &status)))
    }

    /// POST: creates the Lease the body names, which must not carry a `resourceVersion`.
    fn post(&mut self, ns: &str, body: &[u8]) -> Result<Answer, Refusal> {
        let lease = decode(body)?;
        let Some(name) = lease.metadata.name.clone().filter(|n| !n.is_empty()) else {
            let msg = "Lease.coordination.k8s.io \"\" is invalid: metadata.name: Required value: name or generateName is required";
            return Err(status(422, "Invalid", msg, None, None).into());
        };
        if lease.metadata.resource_version.is_some() {
            // Sic: the real server answers 500, with neither reason nor details.
            let msg = "resourceVersion should not be set on objects to be created";
            return Err(status(500, "", msg, None, None).into());
        }
        self.create(ns, &name, lease)
    }

    /// PUT: the UID precondition first (it holds for a missing Lease too, whose UID is empty).
    /// A missing Lease is then created whatever `resourceVersion` the body carries (Leases
    /// allow create-on-update); an existing one is updated under its `resourceVersion`.
    fn put(&mut self, ns: &str, name: &str, body: &[u8]) -> Result<Answer, Refusal> {
        let lease = decode(body)?;
        if let Some(other) = lease.metadata.name.as_deref().filter(|n| *n != name) {
            let msg = format!(
                "the name of the object ({other}) does not match the name on the URL ({name})"
            );
            return Err(bad_request(&msg).into());
        }
        let current = self.leases.get(&key(ns, name)).map(|c| c.metadata.clone());
        let current_uid = current
            .as_ref()
            .and_then(|c| c.uid.as_deref())
            .unwrap_or_default();
        check_uid(ns, name, &lease, current_uid)?;
        match current {
            None => self.create(ns, name, lease),
            Some(current) => self.update(ns, name, lease, current),
        }
    }

    /// Creates Lease `ns/name`: the namespace must exist, the spec be valid and the name free.
    fn create(&mut self, ns: &str, name: &str, mut lease: Lease) -> Result<Answer, Refusal> {
        if !self.namespaces.contains(ns) {
            return Err(namespace_not_found(ns).into());
        }
        if let Some(refused) = invalid(name, &lease) {
            return Err(refused.into());
        }
        if self.leases.contains_key(&key(ns, name)) {
            let msg = format!("leases.{GROUP} \"{name}\" already exists");
            return Err(status_response(409, "AlreadyExists", &msg, Some(name), None).into());
        }
        lease.metadata.name = Some(name.to_owned());
        lease.metadata.namespace = Some(ns.to_owned());
        lease.metadata.uid = Some(uuid::Uuid::new_v4().to_string());
        lease.metadata.creation_timestamp = Some(Time(truncate_to_seconds(Timestamp::now())));
        lease.metadata.resource_version = Some(self.next_rv());
        let answer = Answer::stored(201, &lease);
        self.leases.insert(key(ns, name), lease);
        Ok(answer)
    }

    /// Replaces Lease `ns/name`, whose metadata is `current`: the body must carry the current
    /// `resourceVersion` and a valid spec. Identity and creation time stay the stored ones.
    fn update(
        &mut self,
        ns: &str,
        name: &str,
        mut lease: Lease,
        current: ObjectMeta,
    ) -> Result<Answer, Refusal> {
        let Some(rv) = lease
            .metadata
            .resource_version
            .as_deref()
            .filter(|rv| !rv.is_empty())
        else {
            return Err(resource_version_required(name).into());
        };
        if current.resource_version.as_deref() != Some(rv) {
            let msg = format!(
                "Operation cannot be fulfilled on leases.{GROUP} \"{name}\": the object has been modified; please apply your changes to the latest version and try again"
            );
            return Err(status_response(409, "Conflict", &msg, Some(name), None).into());
        }
        if let Some(refused) = invalid(name, &lease) {
            return Err(refused.into());
        }
        lease.metadata.name = Some(name.to_owned());
        lease.metadata.namespace = Some(ns.to_owned());
        lease.metadata.uid = current.uid;
        lease.metadata.creation_timestamp = current.creation_timestamp;
        lease.metadata.resource_version = Some(self.next_rv());
        let answer = Answer::stored(200, &lease);
        self.leases.insert(key(ns, name), lease);
        Ok(answer)
    }

    fn next_rv(&mut self) -> String {
        self.next_rv += 1;
        (self.next_rv - 1).to_string()
    }
}

/// The UID precondition of a PUT: a UID in the body must be the stored Lease's (empty if none).
fn check_uid(ns: &str, name: &str, lease: &Lease, current_uid: &str) -> Result<(), Refusal> {
    match lease.metadata.uid.as_deref().filter(|u| !u.is_empty()) {
        Some(uid) if uid != current_uid => {
            let msg = format!(
                "Operation cannot be fulfilled on leases.{GROUP} \"{name}\": StorageError: invalid object, Code: 4, Key: /registry/leases/{ns}/{name}, ResourceVersion: 0, AdditionalErrorMsg: Precondition failed: UID in precondition: {uid}, UID in object meta: {current_uid}"
            );
            Err(status_response(409, "Conflict", &msg, Some(name), None).into())
        }
        _ => Ok(()),
    }
}

/// The 422 for an update of an existing Lease without a `resourceVersion`.
fn resource_version_required(name: &str) -> Response {
    let why = "Invalid value: 0x0: must be specified for an update";
    let msg = format!("leases.{GROUP} \"{name}\" is invalid: metadata.resourceVersion: {why}");
    let cause = serde_json::json!({"reason": "FieldValueInvalid", "message": why, "field": "metadata.resourceVersion"});
    let details =
        serde_json::json!({"name": name, "group": GROUP, "kind": "leases", "causes": [cause]});
    status(422, "Invalid", &msg, Some(details), None)
}

/// The 422 for a spec the server's validation rejects, if it does.
fn invalid(name: &str, lease: &Lease) -> Option<Response> {
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
    Some(status(422, "Invalid", &msg, Some(details), None))
}

/// Parses a Lease body as the server does: `MicroTime`s need six fractional digits.
fn decode(body: &[u8]) -> Result<Lease, Refusal> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| bad_request(&e.to_string()))?;
    if let Some(msg) = rules::micro_time_error(&value) {
        return Err(bad_request(&msg).into());
    }
    Ok(serde_json::from_value(value).map_err(|e| bad_request(&e.to_string()))?)
}

fn truncate_to_seconds(ts: Timestamp) -> Timestamp {
    Timestamp::from_second(ts.as_second()).unwrap_or(ts)
}
