//! One pass over a message: every key we know is captured as a raw JSON slice, the rest skipped.
//!
//! The envelope and its `data` object are scanned in the same pass by nested serde seeds that
//! write into caller-owned slots, so nothing is allocated and no byte is tokenised twice. Typed
//! conversion of the captured slices happens afterwards, in `value` and `payload`, once the kind
//! is known. This is why a single-letter key such as `b` (buyer order id in a trade, bids in a
//! depth update, best bid in a ticker) can be captured before we know what it means.

use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

/// The keys captured from an envelope, a payload or a kline's `k` object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Key {
    // Classification.
    LowerE,
    UpperE,
    LowerS,
    Symbol,
    // Single-letter payload fields (their meaning depends on the kind).
    LowerA,
    UpperA,
    LowerB,
    UpperB,
    LowerC,
    UpperC,
    LowerF,
    UpperF,
    LowerH,
    LowerI,
    LowerK,
    LowerL,
    UpperL,
    LowerM,
    UpperM,
    LowerN,
    LowerO,
    UpperO,
    LowerP,
    UpperP,
    LowerQ,
    UpperQ,
    LowerR,
    LowerT,
    UpperT,
    LowerU,
    UpperU,
    LowerV,
    UpperV,
    LowerW,
    LowerX,
    // Multi-letter payload fields.
    Pu,
    LastUpdateId,
    Bids,
    Asks,
    // Envelope fields (meaningful at the top level only).
    Stream,
    Timestamp,
    MessageId,
}

/// Number of [`Key`] variants; the size of a [`Fields`] slot array.
const KEYS: usize = Key::MessageId as usize + 1;

impl Key {
    fn from_name(name: &str) -> Option<Key> {
        use Key::*;
        Some(match name {
            "e" => LowerE,
            "E" => UpperE,
            "s" => LowerS,
            "symbol" => Symbol,
            "a" => LowerA,
            "A" => UpperA,
            "b" => LowerB,
            "B" => UpperB,
            "c" => LowerC,
            "C" => UpperC,
            "f" => LowerF,
            "F" => UpperF,
            "h" => LowerH,
            "i" => LowerI,
            "k" => LowerK,
            "l" => LowerL,
            "L" => UpperL,
            "m" => LowerM,
            "M" => UpperM,
            "n" => LowerN,
            "o" => LowerO,
            "O" => UpperO,
            "p" => LowerP,
            "P" => UpperP,
            "q" => LowerQ,
            "Q" => UpperQ,
            "r" => LowerR,
            "t" => LowerT,
            "T" => UpperT,
            "u" => LowerU,
            "U" => UpperU,
            "v" => LowerV,
            "V" => UpperV,
            "w" => LowerW,
            "x" => LowerX,
            "pu" => Pu,
            "lastUpdateId" => LastUpdateId,
            "bids" => Bids,
            "asks" => Asks,
            "stream" => Stream,
            "timestamp" => Timestamp,
            "message_id" => MessageId,
            _ => return None,
        })
    }
}

/// The raw values of the known keys of one JSON object. A duplicated key keeps its last value,
/// as Python's `json.loads` (the old service) did.
#[derive(Clone, Copy)]
pub(crate) struct Fields<'a> {
    slots: [Option<&'a RawValue>; KEYS],
}

impl<'a> Fields<'a> {
    pub(crate) const EMPTY: Fields<'a> = Fields {
        slots: [None; KEYS],
    };

    pub(crate) fn get(&self, key: Key) -> Option<&'a RawValue> {
        self.slots[key as usize]
    }

    pub(crate) fn has(&self, key: Key) -> bool {
        self.slots[key as usize].is_some()
    }
}

impl fmt::Debug for Fields<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.slots
                    .iter()
                    .enumerate()
                    .filter_map(|(i, v)| v.map(|v| (i, v.get()))),
            )
            .finish()
    }
}

/// What the envelope's `data` key held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Data {
    /// No `data` key: the flat legacy form, the top level is the payload.
    Absent,
    /// An object, scanned into [`Scan::payload`].
    Object,
    /// Something else; the JSON type name is kept for the reject detail.
    NotObject(&'static str),
}

/// The result of scanning one message.
pub(crate) struct Scan<'a> {
    pub(crate) top: Fields<'a>,
    pub(crate) data: Data,
    pub(crate) payload: Fields<'a>,
}

/// Scans a whole message. Fails on any JSON syntax error, on trailing characters, and when the
/// top-level value is not an object.
pub(crate) fn scan_message(text: &str) -> Result<Scan<'_>, serde_json::Error> {
    let mut scan = Scan {
        top: Fields::EMPTY,
        data: Data::Absent,
        payload: Fields::EMPTY,
    };
    let mut de = serde_json::Deserializer::from_str(text);
    de.deserialize_any(TopVisitor { scan: &mut scan })?;
    de.end()?;
    Ok(scan)
}

/// Scans one JSON object (a kline's `k`) into its fields; `None` when it is not an object.
pub(crate) fn scan_object(raw: &RawValue) -> Option<Fields<'_>> {
    let mut fields = Fields::EMPTY;
    let mut de = serde_json::Deserializer::from_str(raw.get());
    de.deserialize_map(ObjectVisitor {
        fields: &mut fields,
    })
    .ok()?;
    Some(fields)
}

/// Reads a key name and maps it to a [`Key`]; `None` for keys we skip.
struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Option<Key>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Option<Key>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
        Ok(Key::from_name(name))
    }
}

/// Fills `fields` from the entries of a map, capturing known keys and skipping the rest.
fn capture_entry<'de, A: MapAccess<'de>>(
    map: &mut A,
    key: Key,
    fields: &mut Fields<'de>,
) -> Result<(), A::Error> {
    fields.slots[key as usize] = Some(map.next_value::<&'de RawValue>()?);
    Ok(())
}

struct TopVisitor<'s, 'a> {
    scan: &'s mut Scan<'a>,
}

impl<'de> Visitor<'de> for TopVisitor<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(name) = map.next_key_seed(DataOrKey)? {
            match name {
                TopKey::Data => {
                    map.next_value_seed(DataSeed {
                        fields: &mut self.scan.payload,
                        data: &mut self.scan.data,
                    })?;
                }
                TopKey::Known(key) => capture_entry(&mut map, key, &mut self.scan.top)?,
                TopKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// A top-level key: `data` is special (scanned in place), the rest are captured or skipped.
enum TopKey {
    Data,
    Known(Key),
    Other,
}

struct DataOrKey;

impl<'de> DeserializeSeed<'de> for DataOrKey {
    type Value = TopKey;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<TopKey, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for DataOrKey {
    type Value = TopKey;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<TopKey, E> {
        Ok(match name {
            "data" => TopKey::Data,
            _ => Key::from_name(name).map_or(TopKey::Other, TopKey::Known),
        })
    }
}

/// Scans the value of `data`: an object fills the payload fields; anything else is recorded
/// as [`Data::NotObject`] (and consumed, so the rest of the message is still validated).
struct DataSeed<'s, 'a> {
    fields: &'s mut Fields<'a>,
    data: &'s mut Data,
}

impl<'de> DeserializeSeed<'de> for DataSeed<'_, 'de> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> DataSeed<'_, 'de> {
    fn not_object<E>(self, found: &'static str) -> Result<(), E> {
        *self.fields = Fields::EMPTY;
        *self.data = Data::NotObject(found);
        Ok(())
    }
}

impl<'de> Visitor<'de> for DataSeed<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        // A repeated `data` key replaces the earlier one entirely (last wins).
        *self.fields = Fields::EMPTY;
        *self.data = Data::Object;
        ObjectVisitor {
            fields: self.fields,
        }
        .visit_map(map)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        self.not_object("an array")
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.not_object("null")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        self.not_object("a boolean")
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        self.not_object("a number")
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        self.not_object("a number")
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        self.not_object("a number")
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        self.not_object("a string")
    }
}

/// Captures the known keys of one object into `fields`.
struct ObjectVisitor<'s, 'a> {
    fields: &'s mut Fields<'a>,
}

impl<'de> Visitor<'de> for ObjectVisitor<'_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key_seed(KeySeed)? {
            match key {
                Some(key) => capture_entry(&mut map, key, self.fields)?,
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw<'a>(f: &Fields<'a>, k: Key) -> Option<&'a str> {
        f.get(k).map(RawValue::get)
    }

    #[test]
    fn envelope_keys_and_payload_keys_land_in_their_own_slots() {
        let s = scan_message(
            r#"{"stream":"x@trade","data":{"e":"trade","s":"BTCUSDT","E":5},"e":"top"}"#,
        )
        .expect("valid JSON");
        assert_eq!(s.data, Data::Object);
        assert_eq!(raw(&s.top, Key::Stream), Some(r#""x@trade""#));
        assert_eq!(raw(&s.top, Key::LowerE), Some(r#""top""#));
        assert_eq!(raw(&s.payload, Key::LowerE), Some(r#""trade""#));
        assert_eq!(raw(&s.payload, Key::UpperE), Some("5"));
    }

    #[test]
    fn non_object_data_is_recorded_with_its_type() {
        let s = scan_message(r#"{"data":[1,{"e":"trade"}],"stream":"a@b"}"#).expect("valid JSON");
        assert_eq!(s.data, Data::NotObject("an array"));
        assert_eq!(raw(&s.top, Key::Stream), Some(r#""a@b""#));
    }

    #[test]
    fn last_duplicate_data_wins() {
        let s =
            scan_message(r#"{"data":{"e":"trade","s":"A"},"data":{"e":"kline"}}"#).expect("valid");
        assert_eq!(raw(&s.payload, Key::LowerE), Some(r#""kline""#));
        assert_eq!(raw(&s.payload, Key::LowerS), None);
    }

    #[test]
    fn escaped_key_names_are_recognised() {
        let s = scan_message(r#"{"\u0065":"trade"}"#).expect("valid");
        assert_eq!(raw(&s.top, Key::LowerE), Some(r#""trade""#));
    }

    #[test]
    fn syntax_errors_and_non_objects_fail() {
        for bad in [
            "",
            "  ",
            "[1]",
            "null",
            "\"s\"",
            "{\"a\":1",
            "{} x",
            "{\"data\":{}",
        ] {
            assert!(scan_message(bad).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn scan_object_reads_nested_kline() {
        let s = scan_message(r#"{"k":{"i":"1h","x":false}}"#).expect("valid");
        let k = s
            .top
            .get(Key::LowerK)
            .and_then(scan_object)
            .expect("object");
        assert_eq!(raw(&k, Key::LowerI), Some(r#""1h""#));
        assert_eq!(raw(&k, Key::LowerX), Some("false"));
        assert!(s.top.get(Key::LowerI).and_then(scan_object).is_none());
    }
}
