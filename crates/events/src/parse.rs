//! The parsing algorithm (docs/envelope.md): bytes in, an [`Event`] or a [`Reject`] out. The
//! steps are decode, payload, kind, symbol and event time, and the first that fails decides.

use std::borrow::Cow;

use crate::event::Event;
use crate::kind::{EventType, Kind};
use crate::payload::Reader;
use crate::reject::{Reject, excerpt};
use crate::scan::{self, Data, Fields, Key};
use crate::symbol::{Symbol, SymbolSource};
use crate::value;

/// Event times below this (before September 2001) are treated as absent: they are seconds,
/// ids or garbage, and would make latency figures absurd.
pub const MIN_PLAUSIBLE_EVENT_TIME_MS: i64 = 1_000_000_000_000;

/// Parses one NATS message body. Total: every byte string yields an event or a typed reject,
/// and nothing panics. The steps run in a fixed order (decode, payload, kind, symbol), so the
/// first failing step decides the reason, and JSON syntax is checked for the whole body before
/// anything else.
///
/// # Errors
/// A [`Reject`] whose [`reason`](Reject::reason) is one of the four
/// [`RejectReason`](crate::RejectReason)s.
pub fn parse(body: &[u8]) -> Result<Event<'_>, Reject> {
    // 1. Decode: UTF-8, JSON grammar and an object at the top, for the whole body.
    let scan = scan::scan_message(body).map_err(|e| Reject::InvalidJson(e.to_string()))?;

    // 2. Payload: `data` when present, else the whole object (flat legacy form).
    let payload = match scan.data {
        Data::Absent => &scan.top,
        Data::Object => &scan.payload,
        Data::NotObject(found) => return Err(Reject::NoPayload { found }),
    };

    // 3. Kind, from the payload only.
    let event_type = classify(payload)?;
    let kind = event_type.map_or(Kind::Depth, EventType::kind);

    // 4. Symbol.
    let (symbol, symbol_source) = resolve_symbol(payload, &scan.top)?;

    // 5. Event time (never a reject).
    let event_time_ms = event_time(payload, kind);

    // 6. Result.
    let mut reader = Reader::new(payload);
    let typed = reader.payload(event_type);
    Ok(Event {
        symbol,
        symbol_source,
        event_time_ms,
        stream: scan.top.get(Key::Stream).and_then(value::string),
        payload: typed,
        malformed_fields: reader.malformed,
        producer_time: scan.top.get(Key::Timestamp),
        message_id: scan.top.get(Key::MessageId),
    })
}

/// The kind step: the payload's `e` names a known event type, or (with no `e` at all) the payload
/// has the partial-book keys; anything else is `unknown_kind`. `Ok(None)` is the spot
/// partial-depth shape, which has no `e`.
fn classify(payload: &Fields<'_>) -> Result<Option<EventType>, Reject> {
    match payload.get(Key::LowerE) {
        Some(raw) => match value::string(raw) {
            Some(e) => EventType::from_e(&e)
                .map(Some)
                .ok_or_else(|| Reject::UnknownKind {
                    e: Some(excerpt(&e)),
                }),
            // An `e` that is not a string names no kind we know.
            None => Err(Reject::UnknownKind { e: None }),
        },
        None if payload.has(Key::LastUpdateId)
            && payload.has(Key::Bids)
            && payload.has(Key::Asks) =>
        {
            Ok(None)
        }
        None => Err(Reject::UnknownKind { e: None }),
    }
}

/// The symbol step: payload `s`, payload `symbol`, top-level `symbol`, then the `stream` prefix;
/// the first candidate that is a non-empty string decides, and it must then validate.
fn resolve_symbol(
    payload: &Fields<'_>,
    top: &Fields<'_>,
) -> Result<(Symbol, SymbolSource), Reject> {
    let from_payload = [
        payload.get(Key::LowerS),
        payload.get(Key::Symbol),
        top.get(Key::Symbol),
    ]
    .into_iter()
    .flatten()
    .filter_map(value::string)
    .find(|s| !s.is_empty())
    .map(|s| (s, SymbolSource::Payload));
    let chosen = from_payload.or_else(|| {
        let stream = top.get(Key::Stream).and_then(value::string)?;
        let prefix = match stream {
            Cow::Borrowed(s) => Cow::Borrowed(s.split_once('@')?.0),
            Cow::Owned(s) => Cow::Owned(s.split_once('@')?.0.to_owned()),
        };
        (!prefix.is_empty()).then_some((prefix, SymbolSource::Stream))
    });
    match chosen {
        Some((candidate, source)) => Symbol::parse(&candidate)
            .map(|symbol| (symbol, source))
            .ok_or_else(|| Reject::NoSymbol {
                candidate: Some(excerpt(&candidate)),
            }),
        None => Err(Reject::NoSymbol { candidate: None }),
    }
}

/// The event time, never a reject: `E`, then `T`, as a plausible integer; mark price uses `E`
/// only, because its `T` is the next funding time. `t` is a trade id and is never read here.
fn event_time(payload: &Fields<'_>, kind: Kind) -> Option<i64> {
    let keys: &[Key] = match kind {
        Kind::MarkPrice => &[Key::UpperE],
        _ => &[Key::UpperE, Key::UpperT],
    };
    keys.iter()
        .filter_map(|&k| payload.get(k))
        .filter_map(value::int)
        .find(|&t| t >= MIN_PLAUSIBLE_EVENT_TIME_MS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RejectReason;
    use crate::payload::{DepthShape, Payload};

    fn reason(body: &str) -> Option<RejectReason> {
        parse(body.as_bytes()).err().map(|r| r.reason())
    }

    #[test]
    fn stream_label_never_decides_the_kind() {
        assert_eq!(
            reason(r#"{"stream":"btcusdt@trade","data":{"foo":1}}"#),
            Some(RejectReason::UnknownKind)
        );
    }

    #[test]
    fn non_utf8_body_is_invalid_json() {
        assert_eq!(
            parse(b"{\"e\":\"trade\",\"s\":\"\xff\"}")
                .err()
                .map(|r| r.reason()),
            Some(RejectReason::InvalidJson)
        );
    }

    #[test]
    fn syntax_error_after_a_null_data_is_still_invalid_json() {
        assert_eq!(
            reason(r#"{"data":null,"x":"#),
            Some(RejectReason::InvalidJson)
        );
    }

    #[test]
    fn non_string_e_is_unknown_kind_even_with_depth_shape() {
        assert_eq!(
            reason(r#"{"e":1,"s":"A","lastUpdateId":1,"bids":[],"asks":[]}"#),
            Some(RejectReason::UnknownKind)
        );
    }

    #[test]
    fn first_non_empty_candidate_decides_even_if_invalid() {
        let r = parse(br#"{"stream":"btcusdt@trade","data":{"e":"trade","s":"BTC-USDT"}}"#);
        assert_eq!(
            r.err(),
            Some(Reject::NoSymbol {
                candidate: Some("BTC-USDT".into())
            })
        );
    }

    #[test]
    fn symbol_falls_back_to_payload_symbol_then_top_level_symbol() {
        let e = parse(br#"{"data":{"e":"trade","s":"","symbol":"ethusdt"}}"#).expect("accepted");
        assert_eq!(e.symbol.as_str(), "ETHUSDT");
        let e = parse(br#"{"symbol":"solusdt","data":{"e":"trade","s":5}}"#).expect("accepted");
        assert_eq!(
            (e.symbol.as_str(), e.symbol_source),
            ("SOLUSDT", SymbolSource::Payload)
        );
    }

    #[test]
    fn escaped_stream_prefix_is_decoded() {
        let e = parse(
            br#"{"stream":"\u0062tcusdt@depth20","data":{"lastUpdateId":1,"bids":[],"asks":[]}}"#,
        )
        .expect("accepted");
        assert_eq!(
            (e.symbol.as_str(), e.symbol_source),
            ("BTCUSDT", SymbolSource::Stream)
        );
    }

    #[test]
    fn implausible_event_time_falls_through_to_t() {
        let e =
            parse(br#"{"e":"trade","s":"A","E":1761055392,"T":1761055392344}"#).expect("accepted");
        assert_eq!(e.event_time_ms, Some(1_761_055_392_344));
        let e = parse(br#"{"e":"trade","s":"A","E":-1}"#).expect("accepted");
        assert_eq!(e.event_time_ms, None);
    }

    #[test]
    fn lone_surrogates_are_invalid_json_in_keys_and_values_alike() {
        for body in [
            r#"{"\ud800":1,"e":"trade","s":"A"}"#,
            r#"{"e":"trade","s":"A","x":"\ud800"}"#,
            r#"{"e":"trade","s":"\udc00","stream":"btcusdt@trade"}"#,
            r#"{"e":"trade","s":"A","x":"\ud800\u0041"}"#,
            r#"{"e":"trade","s":"A","x":["\ud800"]}"#,
        ] {
            assert_eq!(reason(body), Some(RejectReason::InvalidJson), "{body}");
        }
        let e = parse(br#"{"e":"trade","s":"A","x":"\ud83d\ude00"}"#).expect("a pair is fine");
        assert_eq!(e.symbol.as_str(), "A");
    }

    #[test]
    fn mark_price_ignores_next_funding_time() {
        let e = parse(br#"{"e":"markPriceUpdate","s":"A","T":1761062400000}"#).expect("accepted");
        assert_eq!(e.event_time_ms, None);
    }

    #[test]
    fn depth_shapes_are_told_apart_by_payload() {
        let shape = |body: &str| match parse(body.as_bytes()).expect("accepted").payload {
            Payload::Depth(d) => d.shape,
            other => panic!("not depth: {other:?}"),
        };
        assert_eq!(
            shape(r#"{"e":"depthUpdate","s":"A","U":1,"u":2,"pu":0,"b":[],"a":[]}"#),
            DepthShape::FuturesPartial
        );
        assert_eq!(
            shape(r#"{"e":"depthUpdate","s":"A","U":1,"u":2,"b":[],"a":[]}"#),
            DepthShape::Diff
        );
        assert_eq!(
            shape(r#"{"s":"A","lastUpdateId":1,"bids":[],"asks":[]}"#),
            DepthShape::Snapshot
        );
    }

    #[test]
    fn malformed_fields_are_counted_not_rejected() {
        let e = parse(br#"{"e":"trade","s":"A","p":"abc","q":{},"m":"yes","T":1761055392344}"#)
            .expect("accepted");
        assert_eq!(e.malformed_fields, 3);
        let Payload::Trade(t) = e.payload else {
            panic!("trade")
        };
        assert_eq!((t.price, t.quantity, t.buyer_is_maker), (None, None, None));
        assert_eq!(t.trade_time_ms, Some(1_761_055_392_344));
    }
}
