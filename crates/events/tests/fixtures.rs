//! Every fixture envelope against its expected outcome: one body per line of
//! `fixtures/envelopes.ndjson`, one outcome per line of `envelopes.expected.ndjson` (the format
//! is described in docs/envelope.md).

use serde_json::{Value, json};

const INPUT: &str = include_str!("fixtures/envelopes.ndjson");
const EXPECTED: &str = include_str!("fixtures/envelopes.expected.ndjson");

/// The outcome of one line in the fixture's own JSON shape.
fn outcome(line: &str) -> Value {
    match events::parse(line.as_bytes()) {
        Ok(e) => json!({
            "kind": e.kind().as_str(),
            "symbol": e.symbol.as_str(),
            "event_time_ms": e.event_time_ms,
            "symbol_source": e.symbol_source.as_str(),
        }),
        Err(r) => json!({ "reject": r.reason().as_str() }),
    }
}

#[test]
fn every_fixture_line_matches_its_expected_outcome() {
    // Both files end with a newline, and empty lines are test cases: split, drop the last "".
    let inputs: Vec<&str> = INPUT.split('\n').collect();
    let expected: Vec<&str> = EXPECTED.split('\n').collect();
    assert_eq!(inputs.last(), Some(&""));
    let inputs = &inputs[..inputs.len() - 1];
    let expected = &expected[..expected.len() - 1];
    assert_eq!(inputs.len(), 32);
    assert_eq!(inputs.len(), expected.len());

    let mismatches: Vec<String> = inputs
        .iter()
        .zip(expected)
        .enumerate()
        .filter_map(|(i, (input, want))| {
            let want: Value = serde_json::from_str(want).expect("expected file is valid JSON");
            let got = outcome(input);
            (got != want).then(|| format!("line {}: got {got}, want {want}", i + 1))
        })
        .collect();
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));
}

#[test]
fn examples_carry_their_typed_payloads() {
    let lines: Vec<&str> = INPUT.lines().collect();
    // Line 1: the example trade.
    let trade = events::parse(lines[0].as_bytes()).expect("trade");
    let events::Payload::Trade(t) = &trade.payload else {
        panic!("not a trade")
    };
    assert_eq!(
        t.price.as_ref().map(|p| p.as_str()),
        Some("108234.56000000")
    );
    assert_eq!(t.trade_id, Some(5_368_745_213));
    assert_eq!(t.buyer_is_maker, Some(false));
    assert_eq!(trade.malformed_fields, 0);
    assert_eq!(trade.producer_time_ms(), Some(1_761_055_392_351));
    assert_eq!(
        trade.message_id().as_deref(),
        Some("3f0c6a8e-2b7d-4c1e-9a55-6d2f1e7b9c10")
    );

    // Line 3: spot partial depth, levels read lazily and exactly.
    let depth = events::parse(lines[2].as_bytes()).expect("depth");
    let events::Payload::Depth(d) = &depth.payload else {
        panic!("not depth")
    };
    assert_eq!(d.shape, events::DepthShape::Snapshot);
    let bids: Vec<_> = d
        .bids
        .iter()
        .map(|l| l.expect("well-formed").price.to_string())
        .collect();
    assert_eq!(
        bids,
        ["108234.55000000", "108234.54000000", "108234.10000000"]
    );
    assert_eq!(d.asks.iter().count(), 3);

    // Line 8: kline interval from k.i, not from the stream label.
    let kline = events::parse(lines[7].as_bytes()).expect("kline");
    let events::Payload::Kline(k) = &kline.payload else {
        panic!("not a kline")
    };
    assert_eq!(k.interval.as_deref(), Some("1h"));
    assert_eq!(
        (k.open_time_ms, k.closed),
        (Some(1_761_055_200_000), Some(false))
    );
    assert_eq!(kline.malformed_fields, 0);

    // Line 9: mark price keeps T as next funding time.
    let mark = events::parse(lines[8].as_bytes()).expect("markPrice");
    let events::Payload::MarkPrice(m) = &mark.payload else {
        panic!("not markPrice")
    };
    assert_eq!(
        m.funding_rate.as_ref().map(|r| r.as_str()),
        Some("0.00006843")
    );
    assert_eq!(m.next_funding_time_ms, Some(1_761_062_400_000));

    // Every accepted example is free of malformed fields.
    for (i, line) in lines.iter().enumerate().take(18) {
        let e = events::parse(line.as_bytes()).expect("accepted example");
        assert_eq!(e.malformed_fields, 0, "line {}", i + 1);
    }
}

#[test]
fn load_generator_mix_parses_as_the_kinds_it_claims() {
    let mut mix = loadgen::Mix::new(3);
    for _ in 0..5_000 {
        let (kind, symbol, body) = mix.next_message(1_761_055_392_345);
        let e = events::parse(&body).expect("generated messages are valid");
        assert_eq!(e.kind(), kind);
        assert_eq!(e.malformed_fields, 0, "{}", String::from_utf8_lossy(&body));
        if kind == events::Kind::Depth {
            // Spot depth20 carries no symbol: it is labelled with the first stream's.
            assert_eq!(e.symbol.as_str(), "BTCUSDT");
            let events::Payload::Depth(d) = &e.payload else {
                unreachable!()
            };
            assert_eq!(d.bids.iter().filter(|l| l.is_ok()).count(), 20);
        } else {
            assert_eq!(e.symbol.as_str(), symbol);
            assert!(e.event_time_ms.is_some());
        }
    }
}
