//! Request parameters: what each route accepts (documented in the OpenAPI from these types) and
//! the checks serde cannot express. Pure: raw values in, typed values or an [`ApiError`] out.

use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::model::{Kind, Metric, Severity, Status, Timeframe};
use crate::problem::ApiError;

/// The symbols the extractor writes: upper-case letters and digits.
pub const SYMBOL_PATTERN: &str = "^[A-Z0-9]{1,20}$";
/// History points per request unless `limit` says otherwise, and at most.
pub const HISTORY_LIMIT: (u32, u32) = (288, 2000);
/// Findings per page unless `limit` says otherwise, and at most.
pub const FINDINGS_LIMIT: (u32, u32) = (50, 500);
/// Analytics documents per timeframe in a range unless `limit` says otherwise, and at most.
pub const ANALYTICS_LIMIT: (u32, u32) = (100, 1000);
/// The history range when `from` is absent: the last day.
pub const DEFAULT_RANGE: Duration = Duration::hours(24);

/// Checks a symbol against [`SYMBOL_PATTERN`].
///
/// # Errors
/// [`ApiError::BadParameter`] naming `parameter`.
pub fn symbol(parameter: &str, s: &str) -> Result<String, ApiError> {
    let ok = (1..=20).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if ok {
        Ok(s.to_owned())
    } else {
        Err(ApiError::bad(
            parameter,
            "must be 1 to 20 upper-case letters or digits, e.g. BTCUSDT",
        ))
    }
}

/// `limit`, or its default, within `[1, max]`.
///
/// # Errors
/// [`ApiError::BadParameter`] when out of range.
pub fn limit(value: Option<u32>, (default, max): (u32, u32)) -> Result<u32, ApiError> {
    match value {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(_) => Err(ApiError::bad(
            "limit",
            format!("must be between 1 and {max}"),
        )),
    }
}

/// A time range `[from, to)`: `to` defaults to `now`, `from` to `to − default`. A `from` at or
/// after `to` is an empty range, not an error: the schema cannot say which of two instants comes
/// first, so a request it allows is answered.
pub fn range(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    default: Duration,
) -> (DateTime<Utc>, DateTime<Utc>) {
    let to = to.unwrap_or(now);
    let from = from.unwrap_or_else(|| to.checked_sub_signed(default).unwrap_or(to));
    (from, to)
}

/// `GET /v1/datasets` filters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DatasetsQuery {
    /// Only this symbol.
    #[param(pattern = "^[A-Z0-9]{1,20}$", example = "BTCUSDT")]
    pub symbol: Option<String>,
    /// Only this timeframe.
    pub timeframe: Option<Timeframe>,
    /// Only datasets whose latest status is this.
    pub status: Option<Status>,
}

/// The dataset in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct DatasetPath {
    /// The symbol.
    #[param(pattern = "^[A-Z0-9]{1,20}$", example = "BTCUSDT")]
    pub symbol: String,
    /// The timeframe.
    #[param(example = "1h")]
    pub timeframe: Timeframe,
}

/// The history range of `GET /v1/datasets/{symbol}/{timeframe}`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Start of the history (inclusive, RFC 3339); default `to` minus 24 hours.
    pub from: Option<DateTime<Utc>>,
    /// End of the history (exclusive, RFC 3339); default now.
    pub to: Option<DateTime<Utc>>,
    /// Most history points returned (newest first); default 288.
    #[param(minimum = 1, maximum = 2000)]
    pub limit: Option<u32>,
}

/// Which findings by resolution.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FindingState {
    /// Not resolved.
    #[default]
    Open,
    /// Resolved.
    Resolved,
    /// Both.
    All,
}

/// `GET /v1/findings` filters and paging.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FindingsQuery {
    /// `open` (default), `resolved` or `all`.
    pub state: Option<FindingState>,
    /// Only this severity.
    pub severity: Option<Severity>,
    /// Only this kind.
    pub kind: Option<Kind>,
    /// Only this symbol.
    #[param(pattern = "^[A-Z0-9]{1,20}$", example = "BTCUSDT")]
    pub symbol: Option<String>,
    /// Only this timeframe.
    pub timeframe: Option<Timeframe>,
    /// Only findings whose `timestamp` is at or after this instant (RFC 3339).
    pub since: Option<DateTime<Utc>>,
    /// Page size; default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[0-9a-f]{1,512}$")]
    pub cursor: Option<String>,
}

/// The metric and symbol in the path.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct AnalyticsPath {
    /// The metric.
    #[param(example = "volatility")]
    pub metric: Metric,
    /// The symbol.
    #[param(pattern = "^[A-Z0-9]{1,20}$", example = "BTCUSDT")]
    pub symbol: String,
}

/// `GET /v1/analytics/{metric}/{symbol}`: latest, or a range.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AnalyticsQuery {
    /// Only this timeframe (default: every timeframe with documents).
    pub timeframe: Option<Timeframe>,
    /// With `from` and/or `to`: documents in `[from, to)` instead of the latest only.
    pub from: Option<DateTime<Utc>>,
    /// End of the range (exclusive); default now when `from` is given.
    pub to: Option<DateTime<Utc>>,
    /// Documents per timeframe in a range; default 100.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

/// `GET /v1/correlation`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CorrelationQuery {
    /// The timeframe; default `1h`.
    pub timeframe: Option<Timeframe>,
}

/// A cursor: the sort key (`timestamp` in ms, `_id`) of the last finding of a page, in hex so
/// it is opaque and safe in a URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    /// `timestamp`, epoch milliseconds.
    pub millis: i64,
    /// `_id`.
    pub id: String,
}

impl Cursor {
    /// The opaque form.
    pub fn encode(&self) -> String {
        format!("{}|{}", self.millis, self.id)
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Reads an opaque cursor back.
    ///
    /// # Errors
    /// [`ApiError::BadParameter`] naming `cursor` for anything [`Cursor::encode`] did not make.
    pub fn decode(s: &str) -> Result<Cursor, ApiError> {
        let bad = || ApiError::bad("cursor", "not a cursor this API returned");
        if !s.len().is_multiple_of(2) || s.len() > 512 {
            return Err(bad());
        }
        let bytes = (0..s.len())
            .step_by(2)
            .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(bad)?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let (millis, id) = text.split_once('|').ok_or_else(bad)?;
        Ok(Cursor {
            millis: millis.parse().map_err(|_| bad())?,
            id: id.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::testing::at;

    #[test]
    fn symbols_are_upper_case_alphanumerics() {
        assert_eq!(symbol("symbol", "BTCUSDT"), Ok("BTCUSDT".to_owned()));
        for bad in [
            "",
            "btcusdt",
            "BTC-USDT",
            "A".repeat(21).as_str(),
            "B\u{130}",
        ] {
            let e = symbol("symbol", bad).expect_err(bad);
            assert_eq!(e.problem().parameter.as_deref(), Some("symbol"));
        }
    }

    #[test]
    fn limits_default_and_stay_in_range() {
        assert_eq!(limit(None, FINDINGS_LIMIT), Ok(50));
        assert_eq!(limit(Some(500), FINDINGS_LIMIT), Ok(500));
        assert!(limit(Some(0), FINDINGS_LIMIT).is_err());
        assert!(limit(Some(501), FINDINGS_LIMIT).is_err());
    }

    #[test]
    fn range_defaults_to_the_last_day() {
        let now = at(2025, 10, 21, 12, 0, 0);
        assert_eq!(
            range(None, None, now, DEFAULT_RANGE),
            (at(2025, 10, 20, 12, 0, 0), now)
        );
        // A `to` near the minimum instant does not overflow.
        let min = DateTime::<Utc>::MIN_UTC;
        assert_eq!(range(None, Some(min), now, DEFAULT_RANGE), (min, min));
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_a_bad_parameter() {
        let c = Cursor {
            millis: 1_761_000_000_000,
            id: "BTCUSDT|1h|gap|2025-10-21T05:00:00Z".into(),
        };
        let s = c.encode();
        assert!(s.bytes().all(|b| b.is_ascii_hexdigit()), "{s}");
        assert_eq!(Cursor::decode(&s), Ok(c));
        for bad in ["zz", "abc", "7c", "ff", "31"] {
            assert!(Cursor::decode(bad).is_err(), "{bad}");
        }
    }
}
