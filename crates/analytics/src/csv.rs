//! The candle files of `dm-analytics compute`: CSV with the header
//! `open_time,open,high,low,close,volume`, `open_time` RFC 3339 UTC or epoch milliseconds.

use chrono::{DateTime, Utc};

use crate::candle::Candle;

/// A file that does not read as candles; names the line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct CsvError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub reason: String,
}

const COLUMNS: [&str; 6] = ["open_time", "open", "high", "low", "close", "volume"];

fn time(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(ms) = s.parse::<i64>() {
        return DateTime::from_timestamp_millis(ms);
    }
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// Parses a file's text into candles sorted by open time (columns found by header name).
///
/// # Errors
/// [`CsvError`] for a missing column, a bad time or number, or a duplicate open time.
pub fn parse(text: &str) -> Result<Vec<Candle>, CsvError> {
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (_, header) = lines.next().ok_or(CsvError {
        line: 1,
        reason: "empty file".into(),
    })?;
    let names: Vec<&str> = header.split(',').map(str::trim).collect();
    let mut idx = [0usize; 6];
    for (k, col) in COLUMNS.iter().enumerate() {
        idx[k] = names
            .iter()
            .position(|n| n == col)
            .ok_or_else(|| CsvError {
                line: 1,
                reason: format!(
                    "missing column `{col}` (header must be {})",
                    COLUMNS.join(",")
                ),
            })?;
    }
    let mut out = Vec::new();
    for (i, l) in lines {
        let line = i + 1;
        let cells: Vec<&str> = l.split(',').map(str::trim).collect();
        let cell = |k: usize| -> Result<&str, CsvError> {
            cells.get(idx[k]).copied().ok_or_else(|| CsvError {
                line,
                reason: format!("no `{}` value", COLUMNS[k]),
            })
        };
        let num = |k: usize| -> Result<f64, CsvError> {
            let s = cell(k)?;
            s.parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| CsvError {
                    line,
                    reason: format!("`{s}` is not a finite number ({})", COLUMNS[k]),
                })
        };
        let t = cell(0)?;
        out.push(Candle {
            open_time: time(t).ok_or_else(|| CsvError {
                line,
                reason: format!("`{t}` is neither RFC 3339 nor epoch milliseconds"),
            })?,
            open: num(1)?,
            high: num(2)?,
            low: num(3)?,
            close: num(4)?,
            volume: num(5)?,
        });
    }
    out.sort_by_key(|c| c.open_time);
    if let Some(w) = out.windows(2).find(|w| w[0].open_time == w[1].open_time) {
        return Err(CsvError {
            line: 0,
            reason: format!("duplicate open_time {}", w[0].open_time),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_rfc3339_and_epoch_ms_and_sorts() {
        let c = parse(
            "open_time,open,high,low,close,volume\n\
             1759280400000,2,3,1,2.5,10\n\
             2025-10-01T00:00:00Z,1,2,0.5,1.5,5\n",
        )
        .expect("valid");
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].close, 1.5);
        assert_eq!(
            crate::metric::rfc3339(c[1].open_time),
            "2025-10-01T01:00:00Z"
        );
    }

    #[test]
    fn bad_rows_name_their_line() {
        let e = parse("open_time,open,high,low,close,volume\n2025-10-01T00:00:00Z,1,2,x,1,1\n")
            .expect_err("bad number");
        assert_eq!(e.line, 2);
        assert!(parse("time,open\n").is_err());
        assert!(parse("open_time,open,high,low,close,volume\nyesterday,1,1,1,1,1\n").is_err());
    }
}
