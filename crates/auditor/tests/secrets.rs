//! Generated secrets (reserved characters included) in `MYSQL_URI` and `MONGODB_URL`, in every
//! form the schedulers accept: none appears in the start-up log, readiness JSON, `/metrics`, a
//! config error or the final error of dm-auditor (the shared check is `testkit::scheduler_secrets`).

const BIN: &str = env!("CARGO_BIN_EXE_dm-auditor");

#[test]
fn generated_secrets_never_leak_while_running() {
    testkit::scheduler_secrets::never_leak_while_running(BIN);
}

#[test]
fn generated_secrets_never_leak_in_config_errors() {
    testkit::scheduler_secrets::never_leak_in_config_errors(BIN);
}
