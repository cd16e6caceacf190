//! Order-book price levels, read lazily from the raw `[["price","qty"],…]` array.
//!
//! Depth messages dominate parse cost (forty levels each): keeping the array as a slice and parsing
//! a level only when someone iterates means counting a depth20 message allocates nothing.

use std::borrow::Cow;

use crate::decimal::Decimal;

/// One `[price, quantity]` level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Level<'a> {
    /// Price.
    pub price: Decimal<'a>,
    /// Quantity; zero in a diff update means "remove this level".
    pub quantity: Decimal<'a>,
}

/// A level that is not a pair of decimal strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed price level #{index}")]
pub struct LevelError {
    /// Zero-based position of the level in its array.
    pub index: usize,
}

/// The raw JSON array of one side of a book. Iterate it to read the levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Levels<'a> {
    /// The array text, validated JSON; empty when the side was absent or malformed.
    raw: &'a str,
}

impl<'a> Levels<'a> {
    pub(crate) fn from_raw(raw: &'a str) -> Option<Levels<'a>> {
        raw.starts_with('[').then_some(Levels { raw })
    }

    /// The array exactly as received (empty when absent).
    pub fn raw(&self) -> &'a str {
        self.raw
    }

    /// Iterates the levels in order. A malformed level yields one `Err` and ends the iteration.
    pub fn iter(&self) -> LevelsIter<'a> {
        LevelsIter {
            cursor: Cursor {
                bytes: self.raw.as_bytes(),
                text: self.raw,
                pos: 1, // past the opening '['
            },
            index: 0,
            done: self.raw.is_empty(),
        }
    }
}

impl<'a> IntoIterator for &Levels<'a> {
    type Item = Result<Level<'a>, LevelError>;
    type IntoIter = LevelsIter<'a>;

    fn into_iter(self) -> LevelsIter<'a> {
        self.iter()
    }
}

/// Iterator over [`Levels`].
#[derive(Debug, Clone)]
pub struct LevelsIter<'a> {
    cursor: Cursor<'a>,
    index: usize,
    done: bool,
}

impl<'a> Iterator for LevelsIter<'a> {
    type Item = Result<Level<'a>, LevelError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let c = &mut self.cursor;
        c.skip_ws();
        if self.index > 0 {
            if c.eat(b']') {
                self.done = true;
                return None;
            }
            if !c.eat(b',') {
                return self.fail();
            }
            c.skip_ws();
        } else if c.eat(b']') {
            self.done = true;
            return None;
        }
        match c.level() {
            Some(level) => {
                self.index += 1;
                Some(Ok(level))
            }
            None => self.fail(),
        }
    }
}

impl<'a> LevelsIter<'a> {
    fn fail(&mut self) -> Option<Result<Level<'a>, LevelError>> {
        self.done = true;
        Some(Err(LevelError { index: self.index }))
    }
}

/// A byte cursor over already-validated JSON.
#[derive(Debug, Clone)]
struct Cursor<'a> {
    bytes: &'a [u8],
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn skip_ws(&mut self) {
        while matches!(self.bytes.get(self.pos), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        let hit = self.bytes.get(self.pos) == Some(&b);
        if hit {
            self.pos += 1;
        }
        hit
    }

    /// `["price","qty"]`, with optional whitespace; extra elements make it malformed.
    fn level(&mut self) -> Option<Level<'a>> {
        if !self.eat(b'[') {
            return None;
        }
        self.skip_ws();
        let price = self.decimal()?;
        self.skip_ws();
        if !self.eat(b',') {
            return None;
        }
        self.skip_ws();
        let quantity = self.decimal()?;
        self.skip_ws();
        self.eat(b']').then_some(Level { price, quantity })
    }

    fn decimal(&mut self) -> Option<Decimal<'a>> {
        if !self.eat(b'"') {
            return None;
        }
        let start = self.pos;
        let mut escaped = false;
        loop {
            match *self.bytes.get(self.pos)? {
                b'\\' => {
                    escaped = true;
                    self.pos += 2;
                }
                b'"' => break,
                _ => self.pos += 1,
            }
        }
        let end = self.pos;
        self.pos += 1;
        let text = if escaped {
            Cow::Owned(serde_json::from_str::<String>(self.text.get(start - 1..=end)?).ok()?)
        } else {
            Cow::Borrowed(self.text.get(start..end)?)
        };
        Decimal::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn levels(json: &str) -> Vec<Result<(String, String), LevelError>> {
        let levels = Levels::from_raw(json).expect("an array");
        levels
            .iter()
            .map(|l| l.map(|l| (l.price.to_string(), l.quantity.to_string())))
            .collect()
    }

    #[test]
    fn reads_levels_in_order() {
        let got = levels(r#"[["1.5","2"],["1.4","0.00000000"]]"#);
        assert_eq!(
            got,
            vec![
                Ok(("1.5".into(), "2".into())),
                Ok(("1.4".into(), "0.00000000".into()))
            ]
        );
    }

    #[test]
    fn tolerates_whitespace_and_escapes() {
        let got = levels("[ [ \"1\\u002e5\" , \"2\" ] ]");
        assert_eq!(got, vec![Ok(("1.5".into(), "2".into()))]);
    }

    #[test]
    fn empty_array_has_no_levels() {
        assert!(levels("[]").is_empty());
        assert_eq!(Levels::default().iter().count(), 0);
    }

    #[test]
    fn malformed_level_yields_one_error_then_stops() {
        let got = levels(r#"[["1","2"],[1,2],["3","4"]]"#);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1], Err(LevelError { index: 1 }));
        assert_eq!(
            levels(r#"[["1","2","3"]]"#),
            vec![Err(LevelError { index: 0 })]
        );
        assert_eq!(levels(r#"[["x","2"]]"#), vec![Err(LevelError { index: 0 })]);
    }
}
