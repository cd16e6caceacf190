//! One validating pass over a message: every key we know is captured as the exact text of its
//! JSON value, everything else is checked and skipped.
//!
//! This is a purpose-built JSON scanner rather than serde: a general deserializer pays for
//! visitor dispatch and for tokenising values nobody reads, and on depth20 messages (forty
//! `[price, qty]` pairs) that cost dominates the consumer's CPU. The scanner checks the full RFC
//! 8259 grammar (strings with their escapes and control characters, numbers, literals, nesting
//! up to `MAX_DEPTH`), so "is this valid JSON" is answered exactly; it just does not build
//! anything it is not asked for. Typed conversion of the captured text happens afterwards, in
//! `value` and `payload`, once the kind is known: a single-letter key such as `b` (buyer order id
//! in a trade, bids in a depth update, best bid in a ticker) is captured before its meaning is.

use std::fmt;

/// Deepest nesting accepted, counting the top-level object as 1: the same limit as serde_json
/// (whose recursion guard trips on the 128th level), so both agree on what is valid.
pub const MAX_DEPTH: usize = 127;

/// Declares the captured keys once: the enum, the table from discriminant back to key, and each
/// key's name in the JSON, so the three can never disagree.
macro_rules! captured_keys {
    ($($variant:ident = $name:literal,)*) => {
        /// The keys captured from an envelope, a payload or a kline's `k` object.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[repr(u8)]
        pub(crate) enum Key {
            $($variant,)*
        }

        /// Number of [`Key`] variants; the size of a [`Fields`] slot array.
        const KEYS: usize = [$($name,)*].len();

        /// Every key by its discriminant.
        const KEY_BY_INDEX: [Key; KEYS] = [$(Key::$variant,)*];

        /// Each key's name in the JSON, by discriminant.
        const KEY_NAMES: [&str; KEYS] = [$($name,)*];
    };
}

captured_keys! {
    // Classification.
    LowerE = "e",
    UpperE = "E",
    LowerS = "s",
    Symbol = "symbol",
    // Single-letter payload fields (their meaning depends on the kind).
    LowerA = "a",
    UpperA = "A",
    LowerB = "b",
    UpperB = "B",
    LowerC = "c",
    UpperC = "C",
    LowerF = "f",
    UpperF = "F",
    LowerH = "h",
    LowerI = "i",
    LowerK = "k",
    LowerL = "l",
    UpperL = "L",
    LowerM = "m",
    UpperM = "M",
    LowerN = "n",
    LowerO = "o",
    UpperO = "O",
    LowerP = "p",
    UpperP = "P",
    LowerQ = "q",
    UpperQ = "Q",
    LowerR = "r",
    LowerT = "t",
    UpperT = "T",
    LowerU = "u",
    UpperU = "U",
    LowerV = "v",
    UpperV = "V",
    LowerW = "w",
    LowerX = "x",
    // Multi-letter payload fields.
    Pu = "pu",
    LastUpdateId = "lastUpdateId",
    Bids = "bids",
    Asks = "asks",
    // Envelope fields (meaningful at the top level only).
    Stream = "stream",
    Timestamp = "timestamp",
    MessageId = "message_id",
}

/// Marks "not a key we capture" in [`SINGLE_LETTER`].
const NONE: u8 = u8::MAX;

/// Single-letter keys by byte, the common case, resolved with one table load.
const SINGLE_LETTER: [u8; 256] = {
    let mut t = [NONE; 256];
    let mut i = 0;
    while i < KEYS {
        let name = KEY_NAMES[i].as_bytes();
        if name.len() == 1 {
            t[name[0] as usize] = i as u8;
        }
        i += 1;
    }
    t
};

/// How many key names are longer than one letter.
const MULTI_LETTER_COUNT: usize = {
    let (mut n, mut i) = (0, 0);
    while i < KEYS {
        if KEY_NAMES[i].len() > 1 {
            n += 1;
        }
        i += 1;
    }
    n
};

/// The discriminants of the multi-letter keys: few enough that a scan (lengths compared first)
/// costs no more than a `match`.
const MULTI_LETTER: [usize; MULTI_LETTER_COUNT] = {
    let mut out = [0; MULTI_LETTER_COUNT];
    let (mut n, mut i) = (0, 0);
    while i < KEYS {
        if KEY_NAMES[i].len() > 1 {
            out[n] = i;
            n += 1;
        }
        i += 1;
    }
    out
};

/// What a key means to the scanner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Capture(Key),
    /// `data` at the top level: scanned in place as the payload.
    Data,
    Skip,
}

fn classify_key(name: &[u8]) -> KeyKind {
    if let [b] = name {
        let k = SINGLE_LETTER[usize::from(*b)];
        return if k == NONE {
            KeyKind::Skip
        } else {
            // `k` is a discriminant written by SINGLE_LETTER, so it indexes KEY_BY_INDEX.
            KeyKind::Capture(KEY_BY_INDEX[usize::from(k)])
        };
    }
    if name == b"data" {
        return KeyKind::Data;
    }
    MULTI_LETTER
        .iter()
        .find(|&&i| KEY_NAMES[i].as_bytes() == name)
        .map_or(KeyKind::Skip, |&i| KeyKind::Capture(KEY_BY_INDEX[i]))
}

/// The exact JSON text of the values of the known keys of one object. A duplicated key keeps
/// its last value, as Python's `json.loads` (the old service) did.
#[derive(Clone, Copy)]
pub(crate) struct Fields<'a> {
    /// The whole message.
    text: &'a str,
    /// `(start, end)` byte offsets into `text`; `end == 0` means absent (no value is empty).
    spans: [(u32, u32); KEYS],
}

impl<'a> Fields<'a> {
    pub(crate) fn empty(text: &'a str) -> Fields<'a> {
        Fields {
            text,
            spans: [(0, 0); KEYS],
        }
    }

    /// The raw JSON text of `key`'s value.
    pub(crate) fn get(&self, key: Key) -> Option<&'a str> {
        let (start, end) = self.spans[key as usize];
        if end == 0 {
            return None;
        }
        // A JSON value starts and ends on ASCII bytes, so the span is on char boundaries.
        self.text.get(start as usize..end as usize)
    }

    pub(crate) fn has(&self, key: Key) -> bool {
        self.spans[key as usize].1 != 0
    }

    fn set(&mut self, key: Key, start: usize, end: usize) {
        // Offsets fit: `scan_message` refuses inputs longer than u32::MAX bytes.
        self.spans[key as usize] = (start as u32, end as u32);
    }
}

impl fmt::Debug for Fields<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                KEY_BY_INDEX
                    .iter()
                    .filter_map(|&k| self.get(k).map(|v| (k, v))),
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

/// Why a body is not JSON (or not an object), with the byte offset where that was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub(crate) what: &'static str,
    pub(crate) at: usize,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {}", self.what, self.at)
    }
}

type Result<T> = std::result::Result<T, SyntaxError>;

/// Scans a whole message: UTF-8, a JSON object, and nothing after it but whitespace.
pub(crate) fn scan_message(text: &[u8]) -> Result<Scan<'_>> {
    if u32::try_from(text.len()).is_err() {
        return Err(SyntaxError {
            what: "message larger than 4 GiB",
            at: 0,
        });
    }
    let text = std::str::from_utf8(text).map_err(|e| SyntaxError {
        what: "not UTF-8",
        at: e.valid_up_to(),
    })?;
    let mut scan = Scan {
        top: Fields::empty(text),
        data: Data::Absent,
        payload: Fields::empty(text),
    };
    let mut s = Scanner {
        bytes: text.as_bytes(),
        text,
        pos: 0,
    };
    s.skip_ws();
    match s.peek() {
        Some(b'{') => {}
        Some(_) => {
            // Say "not an object" only for a valid non-object; anything else is a syntax error.
            s.skip_value(1)?;
            s.skip_ws();
            s.expect_end()?;
            return Err(SyntaxError {
                what: "top-level value is not an object",
                at: 0,
            });
        }
        None => return Err(s.error("empty body")),
    }
    s.object(1, &mut scan.top, Some((&mut scan.payload, &mut scan.data)))?;
    s.skip_ws();
    s.expect_end()?;
    Ok(scan)
}

/// Scans one JSON object (a kline's `k`) into its fields; `None` when it is not an object.
/// `raw` must be the text of one valid JSON value (a captured field).
pub(crate) fn scan_object(raw: &str) -> Option<Fields<'_>> {
    let mut fields = Fields::empty(raw);
    let mut s = Scanner {
        bytes: raw.as_bytes(),
        text: raw,
        pos: 0,
    };
    if s.peek() != Some(b'{') {
        return None;
    }
    s.object(1, &mut fields, None).ok()?;
    Some(fields)
}

/// Byte classes for the string fast path: 1 = a byte that ends or interrupts plain text
/// (`"`, `\`, or a control character, which JSON forbids raw inside strings).
const STRING_STOP: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        t[b] = true;
        b += 1;
    }
    t[b'"' as usize] = true;
    t[b'\\' as usize] = true;
    t
};

struct Scanner<'a> {
    bytes: &'a [u8],
    text: &'a str,
    pos: usize,
}

impl<'a> Scanner<'a> {
    fn error(&self, what: &'static str) -> SyntaxError {
        SyntaxError { what, at: self.pos }
    }

    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    #[inline(always)]
    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.pos += 1;
        }
    }

    fn expect(&mut self, b: u8, what: &'static str) -> Result<()> {
        if self.peek() == Some(b) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    fn expect_end(&self) -> Result<()> {
        if self.pos == self.bytes.len() {
            Ok(())
        } else {
            Err(self.error("trailing characters"))
        }
    }

    /// An object whose known keys go into `fields`. With `data`, the key `data` is scanned in
    /// place into the payload fields (only at the top level).
    fn object(
        &mut self,
        depth: usize,
        fields: &mut Fields<'a>,
        mut data: Option<(&mut Fields<'a>, &mut Data)>,
    ) -> Result<()> {
        self.members(depth, b'}', |s| {
            s.expect_key_start()?;
            let kind = s.key()?;
            s.colon()?;
            match (kind, data.as_mut()) {
                (KeyKind::Data, Some((payload, slot))) => {
                    // A repeated `data` key replaces the earlier one entirely (last wins).
                    **payload = Fields::empty(s.text);
                    if s.peek() == Some(b'{') {
                        **slot = Data::Object;
                        s.object(depth + 1, payload, None)
                    } else {
                        **slot = Data::NotObject(type_name(s.peek()));
                        s.skip_value(depth + 1)
                    }
                }
                (KeyKind::Capture(key), _) => {
                    let start = s.pos;
                    s.skip_value(depth + 1)?;
                    fields.set(key, start, s.pos);
                    Ok(())
                }
                _ => s.skip_value(depth + 1),
            }
        })
    }

    /// The grammar objects and arrays share: the opening byte is at `pos`, members are
    /// separated by commas, `close` ends it; `member` reads one member. Nesting is limited here,
    /// once for every container.
    #[inline(always)]
    fn members(
        &mut self,
        depth: usize,
        close: u8,
        mut member: impl FnMut(&mut Self) -> Result<()>,
    ) -> Result<()> {
        if depth > MAX_DEPTH {
            return Err(self.error("nesting too deep"));
        }
        self.pos += 1; // '{' or '['
        self.skip_ws();
        if self.peek() == Some(close) {
            self.pos += 1;
            return Ok(());
        }
        loop {
            member(self)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => {
                    self.pos += 1;
                    self.skip_ws();
                }
                Some(c) if c == close => {
                    self.pos += 1;
                    return Ok(());
                }
                _ if close == b'}' => return Err(self.error("expected ',' or '}'")),
                _ => return Err(self.error("expected ',' or ']'")),
            }
        }
    }

    fn expect_key_start(&self) -> Result<()> {
        if self.peek() == Some(b'"') {
            Ok(())
        } else {
            Err(self.error("expected a string key"))
        }
    }

    /// The `:` between a key and its value, with the whitespace around it.
    #[inline(always)]
    fn colon(&mut self) -> Result<()> {
        self.skip_ws();
        self.expect(b':', "expected ':'")?;
        self.skip_ws();
        Ok(())
    }

    /// A key string, classified. Keys with escapes are decoded first (rare); one that does not
    /// decode to valid Unicode (a lone surrogate) makes the message invalid.
    fn key(&mut self) -> Result<KeyKind> {
        let start = self.pos + 1;
        let escaped = self.skip_string()?;
        if !escaped {
            return Ok(classify_key(&self.bytes[start..self.pos - 1]));
        }
        match serde_json::from_slice::<String>(&self.bytes[start - 1..self.pos]) {
            Ok(decoded) => Ok(classify_key(decoded.as_bytes())),
            Err(_) => Err(SyntaxError {
                what: "invalid Unicode escape in key",
                at: start,
            }),
        }
    }

    /// Skips one value, checking its grammar. Strings and numbers, most of every message, are
    /// handled inline; containers and literals take the out-of-line path.
    #[inline(always)]
    fn skip_value(&mut self, depth: usize) -> Result<()> {
        match self.peek() {
            Some(b'"') => self.skip_string().map(|_| ()),
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => self.skip_other(depth),
        }
    }

    #[inline(never)]
    fn skip_other(&mut self, depth: usize) -> Result<()> {
        match self.peek() {
            Some(b'{') => self.skip_object(depth),
            Some(b'[') => self.array(depth),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(_) => Err(self.error("expected a value")),
            None => Err(self.error("unexpected end of input")),
        }
    }

    /// An object nobody reads (a nested value): keys are checked as strings, not classified.
    fn skip_object(&mut self, depth: usize) -> Result<()> {
        self.members(depth, b'}', |s| {
            s.expect_key_start()?;
            s.skip_string()?;
            s.colon()?;
            s.skip_value(depth + 1)
        })
    }

    fn array(&mut self, depth: usize) -> Result<()> {
        self.members(depth, b']', |s| s.skip_value(depth + 1))
    }

    /// Skips a string (the opening quote is at `pos`), validating escapes and rejecting raw
    /// control characters. Returns whether it contained escapes.
    #[inline(always)]
    fn skip_string(&mut self) -> Result<bool> {
        self.pos += 1; // '"'
        let mut escaped = false;
        loop {
            self.skip_plain_text();
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(escaped);
                }
                Some(b'\\') => {
                    escaped = true;
                    self.pos += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.pos += 1
                        }
                        Some(b'u') => self.unicode_escape()?,
                        _ => return Err(self.error("invalid escape")),
                    }
                }
                Some(_) => return Err(self.error("control character in string")),
                None => return Err(self.error("unterminated string")),
            }
        }
    }

    /// A `\\uXXXX` escape (`pos` at the `u`). Surrogates must come in pairs, in keys and values
    /// alike, as serde_json decodes them: a lone one makes the message invalid JSON.
    #[inline(never)]
    fn unicode_escape(&mut self) -> Result<()> {
        let unit = self.hex4(self.pos + 1)?;
        self.pos += 5;
        match unit {
            0xD800..=0xDBFF => {
                let low = (self.bytes.get(self.pos..self.pos + 2) == Some(b"\\u"))
                    .then(|| self.hex4(self.pos + 2))
                    .transpose()?;
                if !low.is_some_and(|l| (0xDC00..=0xDFFF).contains(&l)) {
                    return Err(self.error("lone surrogate in \\u escape"));
                }
                self.pos += 6;
                Ok(())
            }
            0xDC00..=0xDFFF => Err(self.error("lone surrogate in \\u escape")),
            _ => Ok(()),
        }
    }

    /// The four hex digits at `at`, as a UTF-16 code unit.
    fn hex4(&self, at: usize) -> Result<u16> {
        self.bytes
            .get(at..at + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .filter(|h| h.bytes().all(|b| b.is_ascii_hexdigit()))
            .and_then(|h| u16::from_str_radix(h, 16).ok())
            .ok_or_else(|| self.error("invalid \\u escape"))
    }

    /// Advances over bytes that need no attention inside a string, eight at a time.
    #[inline(always)]
    fn skip_plain_text(&mut self) {
        const ONES: u64 = 0x0101_0101_0101_0101;
        const HIGH: u64 = 0x8080_8080_8080_8080;
        while let Some(chunk) = self.bytes.get(self.pos..self.pos + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            let w = u64::from_le_bytes(word);
            // A byte of `x` is zero  <=>  its bit 7 is set in (x - 1) & !x & 0x80 (exact for the
            // lowest such byte, which is all we use); `w - 0x20` flags bytes below 0x20.
            let zero_in = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
            let stop = zero_in(w ^ (ONES * u64::from(b'"')))
                | zero_in(w ^ (ONES * u64::from(b'\\')))
                | (w.wrapping_sub(ONES * 0x20) & !w & HIGH);
            if stop != 0 {
                self.pos += (stop.trailing_zeros() / 8) as usize;
                break;
            }
            self.pos += 8;
        }
        while let Some(&b) = self.bytes.get(self.pos) {
            if STRING_STOP[usize::from(b)] {
                break;
            }
            self.pos += 1;
        }
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<()> {
        if self.bytes.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.error("invalid literal"))
        }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`
    #[inline(always)]
    fn number(&mut self) -> Result<()> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error("invalid number")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return Err(self.error("invalid number"));
            }
            self.digits();
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if !self.peek().is_some_and(|b| b.is_ascii_digit()) {
                return Err(self.error("invalid number"));
            }
            self.digits();
        }
        Ok(())
    }

    #[inline(always)]
    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.pos += 1;
        }
    }
}

/// The JSON type a value starts with, for the `no_payload` detail.
fn type_name(first: Option<u8>) -> &'static str {
    match first {
        Some(b'n') => "null",
        Some(b'"') => "a string",
        Some(b'[') => "an array",
        Some(b't' | b'f') => "a boolean",
        _ => "a number",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_keys_and_payload_keys_land_in_their_own_slots() {
        let s = scan_message(
            br#"{"stream":"x@trade","data":{"e":"trade","s":"BTCUSDT","E":5},"e":"top"}"#,
        )
        .expect("valid JSON");
        assert_eq!(s.data, Data::Object);
        assert_eq!(s.top.get(Key::Stream), Some(r#""x@trade""#));
        assert_eq!(s.top.get(Key::LowerE), Some(r#""top""#));
        assert_eq!(s.payload.get(Key::LowerE), Some(r#""trade""#));
        assert_eq!(s.payload.get(Key::UpperE), Some("5"));
    }

    #[test]
    fn non_object_data_is_recorded_with_its_type() {
        let s = scan_message(br#"{"data":[1,{"e":"trade"}],"stream":"a@b"}"#).expect("valid JSON");
        assert_eq!(s.data, Data::NotObject("an array"));
        assert_eq!(s.top.get(Key::Stream), Some(r#""a@b""#));
        assert_eq!(
            scan_message(br#"{"data":null}"#).map(|s| s.data),
            Ok(Data::NotObject("null"))
        );
    }

    #[test]
    fn last_duplicate_data_wins() {
        let s =
            scan_message(br#"{"data":{"e":"trade","s":"A"},"data":{"e":"kline"}}"#).expect("valid");
        assert_eq!(s.payload.get(Key::LowerE), Some(r#""kline""#));
        assert_eq!(s.payload.get(Key::LowerS), None);
    }

    #[test]
    fn escaped_key_names_are_recognised() {
        let s = scan_message(br#"{"\u0065":"trade"}"#).expect("valid");
        assert_eq!(s.top.get(Key::LowerE), Some(r#""trade""#));
    }

    #[test]
    fn captured_values_keep_their_exact_text() {
        let s = scan_message(b"{\"p\" : \"1.50\" , \"b\":[[\"1\",\"2\"]],\"E\":-1.5e+3 }")
            .expect("valid");
        assert_eq!(s.top.get(Key::LowerP), Some(r#""1.50""#));
        assert_eq!(s.top.get(Key::LowerB), Some(r#"[["1","2"]]"#));
        assert_eq!(s.top.get(Key::UpperE), Some("-1.5e+3"));
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
            "{\"a\":01}",
            "{\"a\":1.}",
            "{\"a\":-}",
            "{\"a\":1e}",
            "{\"a\":tru}",
            "{\"a\":\"\\x\"}",
            "{\"a\":\"\\u12g4\"}",
            "{\"a\":\"\t\"}",
            "{a:1}",
            "{\"a\" 1}",
            "{\"a\":1,}",
            "{\"a\":[1,]}",
            "{\"\\ud800\":1}",
        ] {
            assert!(scan_message(bad.as_bytes()).is_err(), "{bad:?} should fail");
        }
    }

    #[test]
    fn string_scanning_agrees_with_serde_at_every_offset() {
        // The 8-byte fast path must find a stop byte wherever it sits, and not stop on
        // non-ASCII bytes (whose high bit is set).
        for len in 0..20 {
            for stop in ["\"", "\\n", "\\u00e9", "\u{1}", "\u{1f}", "é", "\u{7f}"] {
                let body = format!(
                    "{{\"k\":\"{}{stop}{}\"}}",
                    "a".repeat(len),
                    "b".repeat(len % 9)
                );
                let ours = scan_message(body.as_bytes()).is_ok();
                let serde = serde_json::from_str::<serde_json::Value>(&body).is_ok();
                assert_eq!(ours, serde, "{body:?}");
            }
        }
    }

    #[test]
    fn nesting_limit_matches_serde_json() {
        for n in 120..=130 {
            let body = format!("{{\"a\":{}{}}}", "[".repeat(n), "]".repeat(n));
            let ours = scan_message(body.as_bytes()).is_ok();
            let serde = serde_json::from_str::<serde_json::Value>(&body).is_ok();
            assert_eq!(ours, serde, "depth {n}");
        }
    }

    #[test]
    fn scan_object_reads_nested_kline() {
        let s = scan_message(br#"{"k":{"i":"1h","x":false}}"#).expect("valid");
        let k = s
            .top
            .get(Key::LowerK)
            .and_then(scan_object)
            .expect("object");
        assert_eq!(k.get(Key::LowerI), Some(r#""1h""#));
        assert_eq!(k.get(Key::LowerX), Some("false"));
        assert!(s.top.get(Key::LowerI).and_then(scan_object).is_none());
    }

    #[test]
    fn every_key_name_classifies_to_its_key() {
        for (i, key) in KEY_BY_INDEX.into_iter().enumerate() {
            assert_eq!(key as usize, i, "{key:?} is at its discriminant");
            let name = KEY_NAMES[i];
            assert_eq!(
                classify_key(name.as_bytes()),
                KeyKind::Capture(key),
                "{name}"
            );
        }
        assert_eq!(SINGLE_LETTER.iter().filter(|&&k| k != NONE).count(), 34);
        assert_eq!(MULTI_LETTER.len(), KEYS - 34);
        for skipped in [
            "X", "z", "", "source", "version", "symbols", "Stream", "dat",
        ] {
            assert_eq!(
                classify_key(skipped.as_bytes()),
                KeyKind::Skip,
                "{skipped:?}"
            );
        }
        assert_eq!(classify_key(b"data"), KeyKind::Data);
    }
}
