//! Property tests: `parse` is total on arbitrary and mutated inputs, and agrees with a
//! reference reading of the same JSON through `serde_json::Value`.

use proptest::prelude::*;
use serde_json::Value;

const FIXTURES: &str = include_str!("fixtures/envelopes.ndjson");

fn fixture_lines() -> Vec<Vec<u8>> {
    FIXTURES
        .split('\n')
        .map(|l| l.as_bytes().to_vec())
        .collect()
}

/// A fixture line with a few byte-level mutations: flips, insertions, deletions, truncation.
fn mutated_fixture() -> impl Strategy<Value = Vec<u8>> {
    let lines = fixture_lines();
    (
        0..lines.len(),
        prop::collection::vec((any::<u16>(), any::<u8>(), 0u8..4), 0..6),
    )
        .prop_map(move |(i, edits)| {
            let mut bytes = lines[i].clone();
            for (pos, pick, op) in edits {
                // Half the edits use bytes that matter to the JSON grammar.
                const SIGNIFICANT: &[u8] = b"\"\\{}[],:0123456789eE+-. \t\nutfnl\x01\x7f";
                let byte = if pick % 2 == 0 {
                    SIGNIFICANT[usize::from(pick / 2) % SIGNIFICANT.len()]
                } else {
                    pick
                };
                let at = if bytes.is_empty() {
                    0
                } else {
                    usize::from(pos) % bytes.len()
                };
                match op {
                    0 if !bytes.is_empty() => bytes[at] = byte,
                    1 => bytes.insert(at, byte),
                    2 if !bytes.is_empty() => {
                        bytes.remove(at);
                    }
                    _ => bytes.truncate(at),
                }
            }
            bytes
        })
}

/// JSON built from the vocabulary the parser cares about, so the interesting branches are hit.
fn envelope_like() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec![
        "e",
        "E",
        "s",
        "T",
        "t",
        "p",
        "q",
        "b",
        "a",
        "k",
        "i",
        "symbol",
        "stream",
        "data",
        "lastUpdateId",
        "bids",
        "asks",
        "pu",
        "U",
        "u",
        "x",
        "zz",
    ]);
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        any::<i64>().prop_map(|n| n.to_string()),
        Just("1761055392345".to_owned()),
        prop::sample::select(vec![
            "trade",
            "aggTrade",
            "depthUpdate",
            "kline",
            "24hrTicker",
            "markPriceUpdate",
            "btcusdt@trade",
            "@x",
            "UNKNOWN",
            "",
            "1.5",
            "ethusdt",
            "\\u0041"
        ])
        .prop_map(|s| format!("\"{s}\"")),
        "[a-zA-Z0-9@_ .]{0,12}".prop_map(|s| format!("\"{s}\"")),
    ];
    leaf.prop_recursive(3, 32, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(","))),
            prop::collection::vec((key.clone(), inner), 0..6).prop_map(|kv| {
                let body: Vec<String> = kv
                    .into_iter()
                    .map(|(k, v)| format!("\"{k}\":{v}"))
                    .collect();
                format!("{{{}}}", body.join(","))
            }),
        ]
    })
}

/// Whether serde_json, an independent parser, reads `body` as a JSON object. Values are
/// ignored rather than built, so the question is grammar only: a number beyond f64's range is
/// valid JSON, and so is a string we never decode.
/// serde_json does not check UTF-8 inside strings it skips, so that is checked first (any body
/// that is not UTF-8 is invalid JSON).
/// Skipped strings are not decoded either, so lone surrogates (which serde_json refuses when it
/// decodes a string) are looked for separately.
fn reference_is_json_object(body: &[u8]) -> bool {
    std::str::from_utf8(body).is_ok_and(|text| {
        serde_json::from_str::<std::collections::BTreeMap<String, serde::de::IgnoredAny>>(text)
            .is_ok()
            && !has_lone_surrogate(text)
    })
}

/// Whether a valid JSON text has a `\uD800`–`\uDFFF` escape that is not half of a pair.
fn has_lone_surrogate(text: &str) -> bool {
    let b = text.as_bytes();
    let (mut i, mut in_string, mut high) = (0, false, false);
    while i < b.len() {
        if !in_string {
            in_string = b[i] == b'"';
            i += 1;
            continue;
        }
        let unit = (b[i] == b'\\' && b[i + 1] == b'u')
            .then(|| u16::from_str_radix(&text[i + 2..i + 6], 16).ok())
            .flatten();
        match unit {
            Some(u) if high && (0xDC00..=0xDFFF).contains(&u) => high = false,
            _ if high => return true,
            Some(u) if (0xDC00..=0xDFFF).contains(&u) => return true,
            Some(u) => high = (0xD800..=0xDBFF).contains(&u),
            None => {}
        }
        i += match (unit, b[i]) {
            (Some(_), _) => 6,
            (None, b'\\') => 2,
            (None, b'"') => {
                in_string = false;
                1
            }
            _ => 1,
        };
    }
    false
}

proptest! {
    // PROPTEST_CASES raises the count for a longer local run; CI uses the default below.
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(4096), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
        let outcome = events::parse(&body);
        if !reference_is_json_object(&body) {
            prop_assert_eq!(outcome.err().map(|r| r.reason()), Some(events::RejectReason::InvalidJson));
        }
    }

    #[test]
    fn mutated_fixtures_never_panic_and_invalid_json_agrees_with_serde(body in mutated_fixture()) {
        let outcome = events::parse(&body);
        let invalid = matches!(&outcome, Err(r) if r.reason() == events::RejectReason::InvalidJson);
        prop_assert_eq!(invalid, !reference_is_json_object(&body));
        if let Ok(value) = serde_json::from_slice::<Value>(&body) {
            prop_assert_eq!(verdict(&outcome), reference_outcome(&value), "{}", String::from_utf8_lossy(&body));
        }
        if let Ok(e) = outcome {
            // Iterating levels is part of the API surface: it must be total too.
            if let events::Payload::Depth(d) = &e.payload {
                let _ = d.bids.iter().count() + d.asks.iter().count();
            }
            let _ = (e.producer_time_ms(), e.message_id());
        }
    }

    #[test]
    fn generated_envelopes_follow_the_reference_classification(body in envelope_like()) {
        let outcome = events::parse(body.as_bytes());
        let value: Value = serde_json::from_str(&body).expect("generator emits valid JSON");
        // The verdict (reason, or kind and symbol) is the reference model's, exactly.
        prop_assert_eq!(verdict(&outcome), reference_outcome(&value), "{}", body);
    }
}

/// What the parser decided, reduced to what the reference model can say.
fn verdict(
    outcome: &Result<events::Event<'_>, events::Reject>,
) -> Result<(events::Kind, String), events::RejectReason> {
    outcome
        .as_ref()
        .map(|e| (e.kind(), e.symbol.as_str().to_owned()))
        .map_err(events::Reject::reason)
}

/// An independent, slow reading of the whole algorithm over `serde_json::Value`: object,
/// payload, kind, then symbol, each failing step naming its reason.
fn reference_outcome(v: &Value) -> Result<(events::Kind, String), events::RejectReason> {
    use events::RejectReason as R;
    let obj = v.as_object().ok_or(R::InvalidJson)?;
    let payload = match obj.get("data") {
        Some(Value::Object(p)) => p,
        Some(_) => return Err(R::NoPayload),
        None => obj,
    };
    let kind = reference_kind(v).ok_or(R::UnknownKind)?;
    let candidate = [payload.get("s"), payload.get("symbol"), obj.get("symbol")]
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .find(|s| !s.is_empty())
        .map(str::to_owned)
        .or_else(|| {
            let stream = obj.get("stream")?.as_str()?;
            let prefix = stream.split_once('@')?.0;
            (!prefix.is_empty()).then(|| prefix.to_owned())
        })
        .ok_or(R::NoSymbol)?;
    let upper = candidate.to_ascii_uppercase();
    let valid = (1..=20).contains(&upper.len())
        && upper
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        && upper != "UNKNOWN";
    if valid {
        Ok((kind, upper))
    } else {
        Err(R::NoSymbol)
    }
}

/// An independent, slow reading of the payload and kind steps over `serde_json::Value`: the
/// payload is `data` when it is an object, else the whole message; the kind comes from `e`, or
/// from the partial-book shape when there is no `e`.
fn reference_kind(v: &Value) -> Option<events::Kind> {
    let obj = v.as_object()?;
    let payload = match obj.get("data") {
        Some(Value::Object(p)) => p,
        Some(_) => return None,
        None => obj,
    };
    match payload.get("e") {
        Some(Value::String(e)) => match e.to_ascii_lowercase().as_str() {
            "trade" | "aggtrade" => Some(events::Kind::Trade),
            "depthupdate" => Some(events::Kind::Depth),
            "24hrticker" | "24hrminiticker" => Some(events::Kind::Ticker),
            "kline" => Some(events::Kind::Kline),
            "markpriceupdate" => Some(events::Kind::MarkPrice),
            _ => None,
        },
        Some(_) => None,
        None => (payload.contains_key("lastUpdateId")
            && payload.contains_key("bids")
            && payload.contains_key("asks"))
        .then_some(events::Kind::Depth),
    }
}
