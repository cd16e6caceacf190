//! dm-demo: parse the command line and run it (see the `demo` crate).
fn main() {}
