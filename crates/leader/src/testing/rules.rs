//! What the real API server checks before it stores a Lease, as pure functions the fake applies:
//! who may do what (static tokens and RBAC rules), `MicroTime` precision, and spec validation.
//! Each rule was checked against kube-apiserver 1.20 (`tests/k8s/`, `make test-k8s`).

use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::api::rbac::v1::PolicyRule;

/// The API group of Leases, as RBAC rules and `Status` details name it.
pub(crate) const GROUP: &str = "coordination.k8s.io";

/// Who a bearer token authenticates as, and what RBAC lets them do.
#[derive(Clone, Debug)]
pub(crate) struct User {
    /// The user name the server reports in a 403, e.g. `system:serviceaccount:ns:sa`.
    pub name: String,
    /// `None`: a member of `system:masters`, allowed everything.
    pub rules: Option<Vec<(String, PolicyRule)>>,
}

impl User {
    /// Whether RBAC allows `verb` on Lease `name` (none for create) in `namespace`.
    pub fn may(&self, verb: &str, namespace: &str, name: Option<&str>) -> bool {
        let Some(rules) = &self.rules else {
            return true;
        };
        rules
            .iter()
            .any(|(ns, rule)| ns == namespace && rule_allows(rule, verb, name))
    }
}

/// One RBAC `PolicyRule` against a Lease request. A rule with `resourceNames` never matches a
/// request without a name (create), as on the real server.
fn rule_allows(rule: &PolicyRule, verb: &str, name: Option<&str>) -> bool {
    let has = |list: &Option<Vec<String>>, want: &str| {
        list.as_ref()
            .is_some_and(|l| l.iter().any(|v| v == want || v == "*"))
    };
    let names_ok = match (rule.resource_names.as_deref(), name) {
        (None | Some([]), _) => true,
        (Some(names), Some(name)) => names.iter().any(|n| n == name),
        (Some(_), None) => false,
    };
    has(&rule.api_groups, GROUP)
        && has(&rule.resources, "leases")
        && rule.verbs.iter().any(|v| v == verb || v == "*")
        && names_ok
}

/// The 403 message of the real server's RBAC authorizer.
pub(crate) fn forbidden_message(
    user: &str,
    verb: &str,
    namespace: &str,
    name: Option<&str>,
) -> String {
    let object = match name {
        Some(name) => format!("leases.{GROUP} \"{name}\""),
        None => format!("leases.{GROUP}"),
    };
    format!(
        "{object} is forbidden: User \"{user}\" cannot {verb} resource \"leases\" in API group \"{GROUP}\" in the namespace \"{namespace}\""
    )
}

/// The Go layout the server parses `MicroTime` with: exactly six fractional digits.
pub(crate) const MICRO_TIME_LAYOUT: &str = "2006-01-02T15:04:05.000000Z07:00";

/// The first `acquireTime`/`renewTime` of a Lease body that the real server cannot parse, with
/// the server's reason; `None` if both are absent, null or well-formed.
pub(crate) fn micro_time_error(body: &serde_json::Value) -> Option<String> {
    let spec = body.get("spec")?;
    ["acquireTime", "renewTime"].into_iter().find_map(|field| {
        let value = spec.get(field)?;
        let text = value.as_str()?;
        (!is_micro_time(text)).then(|| {
            format!(
                "Lease in version \"v1\" cannot be handled as a Lease: v1.Lease.Spec: v1.LeaseSpec.{}: unmarshalerDecoder: parsing time \"{text}\" as \"{MICRO_TIME_LAYOUT}\": cannot parse",
                upper_first(field)
            )
        })
    })
}

fn upper_first(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// `YYYY-MM-DDTHH:MM:SS.ffffff` then `Z` or `±HH:MM`, as Go's `time.Parse` accepts it.
fn is_micro_time(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let at = |i: usize, c: u8| b.get(i) == Some(&c);
    let date_time = digits(0..4)
        && at(4, b'-')
        && digits(5..7)
        && at(7, b'-')
        && digits(8..10)
        && at(10, b'T')
        && digits(11..13)
        && at(13, b':')
        && digits(14..16)
        && at(16, b':')
        && digits(17..19)
        && at(19, b'.')
        && digits(20..26);
    let zone: &[u8] = b.get(26..).unwrap_or_default();
    let zone_ok = zone == b"Z"
        || (zone.len() == 6
            && matches!(zone[0], b'+' | b'-')
            && zone[1..3].iter().all(u8::is_ascii_digit)
            && zone[3] == b':'
            && zone[4..6].iter().all(u8::is_ascii_digit));
    date_time && zone_ok
}

/// One field the server's Lease validation rejects: (path, value, reason).
pub(crate) type FieldError = (&'static str, i64, &'static str);

/// The real server's `LeaseSpec` validation (1.20), in its order.
pub(crate) fn spec_errors(spec: Option<&LeaseSpec>) -> Vec<FieldError> {
    let Some(spec) = spec else {
        return Vec::new();
    };
    let mut errors = Vec::new();
    if let Some(d) = spec.lease_duration_seconds
        && d <= 0
    {
        errors.push((
            "spec.leaseDurationSeconds",
            i64::from(d),
            "must be greater than 0",
        ));
    }
    if let Some(t) = spec.lease_transitions
        && t < 0
    {
        // Sic: the server's own wording.
        errors.push((
            "spec.leaseTransitions",
            i64::from(t),
            "must to greater or equal than 0",
        ));
    }
    errors
}

/// The 422 message for `errors` on Lease `name`: one error inline, several in brackets.
pub(crate) fn invalid_message(name: &str, errors: &[FieldError]) -> String {
    let parts: Vec<String> = errors
        .iter()
        .map(|(field, value, why)| format!("{field}: Invalid value: {value}: {why}"))
        .collect();
    let joined = match parts.as_slice() {
        [one] => one.clone(),
        many => format!("[{}]", many.join(", ")),
    };
    format!("Lease.{GROUP} \"{name}\" is invalid: {joined}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(verbs: &[&str], names: Option<&[&str]>) -> PolicyRule {
        PolicyRule {
            api_groups: Some(vec![GROUP.into()]),
            resources: Some(vec!["leases".into()]),
            verbs: verbs.iter().map(|v| (*v).to_owned()).collect(),
            resource_names: names.map(|n| n.iter().map(|v| (*v).to_owned()).collect()),
            non_resource_urls: None,
        }
    }

    #[test]
    fn rbac_rules_match_verb_namespace_and_resource_names_and_create_ignores_named_rules() {
        let user = User {
            name: "u".into(),
            rules: Some(vec![
                ("ns".into(), rule(&["get", "update"], Some(&["mine"]))),
                ("ns".into(), rule(&["create"], None)),
            ]),
        };
        assert!(user.may("get", "ns", Some("mine")));
        assert!(user.may("update", "ns", Some("mine")));
        assert!(!user.may("get", "ns", Some("other")));
        assert!(!user.may("delete", "ns", Some("mine")));
        assert!(!user.may("get", "elsewhere", Some("mine")));
        assert!(user.may("create", "ns", None));
        let named_create = User {
            name: "u".into(),
            rules: Some(vec![("ns".into(), rule(&["create"], Some(&["mine"])))]),
        };
        assert!(!named_create.may("create", "ns", None));
    }

    #[test]
    fn micro_time_needs_exactly_six_fractional_digits() {
        assert!(is_micro_time("2026-11-28T16:07:50.384165Z"));
        assert!(is_micro_time("2026-11-28T16:07:50.384165+01:00"));
        for bad in [
            "2026-11-28T16:07:50.384Z",
            "2026-11-28T16:07:50Z",
            "2026-11-28T16:07:50.384165123Z",
            "2026-11-28 16:07:50.384165Z",
        ] {
            assert!(!is_micro_time(bad), "{bad}");
        }
        let body = serde_json::json!({"spec": {"acquireTime": null, "renewTime": "2026-11-28T16:07:50.384Z"}});
        let message = micro_time_error(&body).expect("rejected");
        assert!(
            message.contains("v1.LeaseSpec.RenewTime: unmarshalerDecoder: parsing time"),
            "{message}"
        );
    }

    #[test]
    fn spec_validation_reports_every_field_in_the_servers_words() {
        let spec = LeaseSpec {
            lease_duration_seconds: Some(0),
            lease_transitions: Some(-1),
            ..LeaseSpec::default()
        };
        let errors = spec_errors(Some(&spec));
        assert_eq!(
            invalid_message("l", &errors),
            "Lease.coordination.k8s.io \"l\" is invalid: [spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0, spec.leaseTransitions: Invalid value: -1: must to greater or equal than 0]"
        );
        assert_eq!(
            invalid_message("l", &errors[..1]),
            "Lease.coordination.k8s.io \"l\" is invalid: spec.leaseDurationSeconds: Invalid value: 0: must be greater than 0"
        );
    }
}
