//! The holder identity: the pod name plus a suffix that is new on every process start.

/// Characters of the random suffix (hex digits of a UUID v4; 32 bits are plenty to tell apart
/// the restarts of one pod).
const SUFFIX_LEN: usize = 8;

/// Builds `<pod name>_<random suffix>`: unique per process start, so a restarted container is a
/// new holder and never silently continues the old process's term.
///
/// The pod name comes from `POD_NAME` (downward API), else `HOSTNAME`; if neither is set, the
/// identity is the suffix alone, which is still unique. A restarted container in the same pod
/// therefore becomes a new holder instead of silently continuing the old process's term.
pub fn identity(pod_name: Option<&str>, hostname: Option<&str>) -> String {
    let suffix = random_suffix();
    let base = [pod_name, hostname]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|s| !s.is_empty());
    match base {
        Some(base) => format!("{base}_{suffix}"),
        None => suffix,
    }
}

fn random_suffix() -> String {
    uuid::Uuid::new_v4()
        .simple()
        .to_string()
        .chars()
        .take(SUFFIX_LEN)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_pod_name_plus_eight_hex_digits() {
        let id = identity(Some("dm-auditor-7c9f-x2"), Some("ignored"));
        let (base, suffix) = id.rsplit_once('_').expect("has a suffix");
        assert_eq!(base, "dm-auditor-7c9f-x2");
        assert_eq!(suffix.len(), 8);
        assert!(suffix.bytes().all(|b| b.is_ascii_hexdigit()), "{suffix}");
    }

    #[test]
    fn each_start_gets_a_new_identity() {
        assert_ne!(identity(Some("pod"), None), identity(Some("pod"), None));
    }

    #[test]
    fn hostname_is_the_fallback_and_suffix_alone_the_last_resort() {
        assert!(identity(Some(" "), Some("host-1")).starts_with("host-1_"));
        let bare = identity(None, None);
        assert_eq!(bare.len(), 8);
    }
}
