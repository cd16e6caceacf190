//! dm-analytics: filled in by a later issue.

fn main() {}
