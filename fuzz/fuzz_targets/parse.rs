//! `events::parse` on arbitrary bytes: it never panics, walking every accepted event (depth
//! levels included) never panics, and whatever serde_json refuses is `invalid_json` for us too.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|body: &[u8]| {
    let outcome = events::parse(body);
    let serde_accepts = std::str::from_utf8(body).is_ok_and(|text| {
        serde_json::from_str::<std::collections::BTreeMap<String, serde::de::IgnoredAny>>(text)
            .is_ok()
    });
    if !serde_accepts {
        assert_eq!(
            outcome.as_ref().err().map(events::Reject::reason),
            Some(events::RejectReason::InvalidJson),
            "serde_json refuses this body, so must we"
        );
    }
    if let Ok(e) = outcome {
        if let events::Payload::Depth(d) = &e.payload {
            let _ = d.bids.iter().count() + d.asks.iter().count();
        }
        let _ = (
            e.producer_time_ms(),
            e.message_id(),
            e.symbol.as_str().len(),
        );
    }
});
