//! Parse throughput on the realistic mix, side by side with the cost of merely validating the
//! same bytes as JSON (`serde_json::from_slice::<IgnoredAny>`). Run: `make bench-parse`.

#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde::de::IgnoredAny;

const POOL: usize = 10_000;
const NOW_MS: i64 = 1_761_055_392_345;

fn pool_of(kind: Option<events::Kind>) -> Vec<Vec<u8>> {
    let mut mix = loadgen::Mix::new(42);
    std::iter::repeat_with(|| mix.next_message(NOW_MS))
        .filter(|(k, _, _)| kind.is_none_or(|want| *k == want))
        .map(|(_, _, body)| body)
        .take(POOL)
        .collect()
}

fn bench_pool(c: &mut Criterion, name: &str, pool: &[Vec<u8>]) {
    let mut group = c.benchmark_group(name);
    group.throughput(Throughput::Elements(pool.len() as u64));
    group.bench_function("events::parse", |b| {
        b.iter(|| {
            let mut accepted = 0usize;
            for body in pool {
                accepted += usize::from(events::parse(black_box(body)).is_ok());
            }
            assert_eq!(accepted, pool.len());
        })
    });
    group.bench_function("serde_json IgnoredAny", |b| {
        b.iter(|| {
            for body in pool {
                let _: IgnoredAny = serde_json::from_slice(black_box(body)).expect("valid JSON");
            }
        })
    });
    group.finish();
}

fn parse(c: &mut Criterion) {
    bench_pool(c, "mix", &pool_of(None));
    bench_pool(c, "depth20", &pool_of(Some(events::Kind::Depth)));
    bench_pool(c, "trade", &pool_of(Some(events::Kind::Trade)));
}

criterion_group!(benches, parse);
criterion_main!(benches);
