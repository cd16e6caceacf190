//! The cadence checks both schedulers share. Their argument groups live where the other
//! binaries' do: [`store::config::StoreArgs`] (databases, symbols) and
//! [`runtime::config::ServiceArgs`] (probes, drain). The cadence variables (`AUDIT_INTERVAL` vs
//! `ANALYTICS_INTERVAL`, their retry minimums and enable flags) differ in name and default per
//! binary, so each binary declares those itself and validates them with [`cadence`].

use std::time::Duration;

use runtime::config::{ConfigError, invalid};

/// Checks a cycle interval (at least 1 s) and its first retry delay (> 0), naming the binary's
/// variables.
///
/// # Errors
/// [`ConfigError`] naming `interval_var` or `retry_var`.
pub fn cadence(
    interval: Duration,
    interval_var: &'static str,
    retry_min: Duration,
    retry_var: &'static str,
) -> Result<(), ConfigError> {
    if interval < Duration::from_secs(1) {
        return Err(invalid(interval_var, "must be ≥ 1s"));
    }
    if retry_min.is_zero() {
        return Err(invalid(retry_var, "must be > 0"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cadence_names_the_binarys_variables() {
        let s = Duration::from_secs(1);
        assert_eq!(cadence(s / 2, "I", s, "R").expect_err("short").var, "I");
        assert_eq!(
            cadence(s, "I", Duration::ZERO, "R").expect_err("zero").var,
            "R"
        );
        assert!(cadence(s, "I", s, "R").is_ok());
    }
}
