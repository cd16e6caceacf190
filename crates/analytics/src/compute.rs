//! `dm-analytics compute`: offline analysis of candle files, printed as one JSON object.

use chrono::{DateTime, Duration, Utc};
use serde_json::{Map, Value};
use store::Timeframe;

use crate::analysis::analyze;
use crate::candle::Candle;
use crate::metric::Kind;
use crate::options::Options;

/// The per-symbol keys, in output order (spread is disabled and never printed).
const KEYS: [Kind; 6] = [
    Kind::Volatility,
    Kind::Volume,
    Kind::Trend,
    Kind::Deviation,
    Kind::Seasonality,
    Kind::Regime,
];

/// The default `--as-of`: the newest open time of any symbol plus one interval.
pub fn default_as_of(series: &[(String, Vec<Candle>)], tf: Timeframe) -> Option<DateTime<Utc>> {
    series
        .iter()
        .filter_map(|(_, c)| c.last().map(|k| k.open_time))
        .max()
        .map(|t| t + Duration::seconds(tf.seconds()))
}

/// The output object: per symbol every metric (null when skipped), plus `correlation` per
/// symbol and `correlation_matrix` when two or more symbols are given. `as_of` is also the
/// seasonality clock; `computed_at` stamps the metadata.
pub fn output(
    series: &[(String, Vec<Candle>)],
    tf: Timeframe,
    as_of: DateTime<Utc>,
    options: &Options,
    computed_at: DateTime<Utc>,
) -> Value {
    let correlate = series.len() >= 2;
    let a = analyze(series, tf, as_of, as_of, options, correlate);
    let corr_docs = match &a.correlation {
        Some(Ok(c)) => c.docs(options),
        _ => Vec::new(),
    };
    let mut out = Map::new();
    for s in &a.symbols {
        let mut m = Map::new();
        for k in KEYS {
            let v = match s.metrics.get(&k) {
                Some(Ok(doc)) => doc.to_json(computed_at),
                _ => Value::Null,
            };
            m.insert(k.as_str().into(), v);
        }
        if correlate {
            let v = corr_docs
                .iter()
                .find(|(sym, _)| *sym == s.symbol)
                .map_or(Value::Null, |(_, d)| d.to_json(computed_at));
            m.insert(Kind::Correlation.as_str().into(), v);
        }
        out.insert(s.symbol.clone(), Value::Object(m));
    }
    if correlate {
        let v = match &a.correlation {
            Some(Ok(c)) => c.matrix_doc_json(tf.label()),
            _ => Value::Null,
        };
        out.insert("correlation_matrix".into(), v);
    }
    Value::Object(out)
}

/// Why `compute` could not run.
#[derive(Debug, thiserror::Error)]
pub enum ComputeError {
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A file is not valid candle CSV.
    #[error("{path}: {source}")]
    Csv {
        /// The file.
        path: String,
        /// The parse error.
        #[source]
        source: crate::csv::CsvError,
    },
    /// An `--option` is not valid.
    #[error(transparent)]
    Option(#[from] crate::options::BadOption),
    /// No file holds a candle, and no `--as-of` was given.
    #[error("no candles: give --as-of or non-empty files")]
    Empty,
}

/// Reads the files and builds the output of `compute`.
///
/// # Errors
/// [`ComputeError`] for unreadable files, bad CSV or bad options.
pub fn run(args: &crate::config::ComputeArgs) -> Result<Value, ComputeError> {
    let mut options = Options::default();
    for o in &args.options {
        options.set(o)?;
    }
    let mut series = Vec::new();
    for (symbol, path) in &args.candles {
        let p = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ComputeError::Read {
            path: p.clone(),
            source,
        })?;
        let candles =
            crate::csv::parse(&text).map_err(|source| ComputeError::Csv { path: p, source })?;
        series.push((symbol.clone(), candles));
    }
    let as_of = match args.as_of {
        Some(t) => t,
        None => default_as_of(&series, args.timeframe).ok_or(ComputeError::Empty)?,
    };
    Ok(output(&series, args.timeframe, as_of, &options, Utc::now()))
}
