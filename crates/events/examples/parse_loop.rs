//! Parses the realistic mix in a loop, for profilers (`perf record`, `valgrind --tool=callgrind`).
//! Usage: `cargo run --release -p events --example parse_loop -- [ROUNDS] [KIND|all] [parse|ignored]`.
//! `ignored` runs `serde_json::from_slice::<IgnoredAny>` on the same bytes instead, so
//! instruction counts of the two can be compared on a machine without cycle counters.

fn main() {
    let mut args = std::env::args().skip(1);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
    let only = args.next().filter(|k| k != "all");
    let ignored = args.next().as_deref() == Some("ignored");
    let mut mix = loadgen::Mix::new(42);
    let pool: Vec<Vec<u8>> = std::iter::repeat_with(|| mix.next_message(1_761_055_392_345))
        .filter(|(k, _, _)| {
            only.as_deref()
                .is_none_or(|o| format!("{k:?}").eq_ignore_ascii_case(o))
        })
        .map(|(_, _, b)| b)
        .take(10_000)
        .collect();
    let started = std::time::Instant::now();
    let mut accepted = 0usize;
    for _ in 0..rounds {
        for body in &pool {
            let ok = if ignored {
                serde_json::from_slice::<serde::de::IgnoredAny>(std::hint::black_box(body)).is_ok()
            } else {
                events::parse(std::hint::black_box(body)).is_ok()
            };
            accepted += usize::from(ok);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    println!("{accepted} accepted, {:.0} msgs/s", accepted as f64 / secs);
}
