//! The schedulers' data access (filled in by the auditor issue).
