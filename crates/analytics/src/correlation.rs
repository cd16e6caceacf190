//! Correlation: Pearson matrix, rolling correlation against the benchmark, cross-correlation lag
//! and volatility correlation over the symbols' joined rows.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::candle::Candle;
use crate::metric::{Kind, Metadata, MetricDoc, Skip, num_or_null, object, rfc3339};
use crate::options::{CorrelationInput, Options};
use crate::stats::{
    cross_correlation_lag, mean, pct_change, pearson, rolling, rolling_pearson_last, sample_std,
};

/// A symbol qualifies with more than this many candles.
pub const MIN_CANDLES_EXCLUSIVE: usize = 20;
/// Fewest rows the join on timestamp must leave.
pub const MIN_JOINED_ROWS: usize = 20;
/// The preferred benchmark.
pub const BENCHMARK: &str = "BTCUSDT";
/// Rows of the rolling correlation.
pub const ROLLING_WINDOW: usize = 30;
/// Rows of the rolling std compared by the volatility correlation.
pub const VOLATILITY_WINDOW: usize = 20;
/// The largest matrix written, in encoded bytes: under MongoDB's 16 MiB document limit with
/// room for the document's other fields and the update statement around it (about 900
/// symbols with 9-character names).
pub const MAX_MATRIX_BYTES: usize = 15 * 1024 * 1024;

/// One symbol's values.
#[derive(Debug, Clone, PartialEq)]
pub struct SymbolCorrelation {
    /// The symbol.
    pub symbol: String,
    /// ρ with every other symbol, in symbol order.
    pub correlations: Vec<(String, f64)>,
    /// 30-row rolling Pearson against the benchmark at the last row (0 for the benchmark).
    pub rolling_correlation: f64,
    /// The "same"-mode lag of the benchmark vs this symbol (`None` for the benchmark).
    pub cross_correlation_lag: Option<i64>,
    /// Pearson of the 20-row rolling std of this symbol vs the benchmark (NaN for the benchmark).
    pub volatility_correlation: f64,
}

/// The result over all qualifying symbols.
#[derive(Debug, Clone, PartialEq)]
pub struct Correlation {
    /// Qualifying symbols, in input order.
    pub symbols: Vec<String>,
    /// The benchmark.
    pub benchmark: String,
    /// `ρ[i][j]`, diagonal included.
    pub matrix: Vec<Vec<f64>>,
    /// Per symbol, in `symbols` order.
    pub per_symbol: Vec<SymbolCorrelation>,
    /// The newest joined open time.
    pub timestamp: DateTime<Utc>,
    /// The input used.
    pub input: CorrelationInput,
}

/// Computes every symbol's correlation document and the matrix over each symbol's window (in
/// configured order), on the open times all qualifying symbols share.
///
/// # Errors
/// [`Skip::TooFewSymbols`] when fewer than two symbols have more than 20 candles;
/// [`Skip::TooFewJoinedRows`] when the inner join leaves fewer than 20 rows.
pub fn compute(series: &[(String, Vec<Candle>)], options: &Options) -> Result<Correlation, Skip> {
    let qualifying: Vec<&(String, Vec<Candle>)> = series
        .iter()
        .filter(|(_, c)| c.len() > MIN_CANDLES_EXCLUSIVE)
        .collect();
    if qualifying.len() < 2 {
        return Err(Skip::TooFewSymbols);
    }
    let joined = joined_times(&qualifying);
    let Some(&timestamp) = joined.last() else {
        return Err(Skip::TooFewJoinedRows);
    };
    if joined.len() < MIN_JOINED_ROWS {
        return Err(Skip::TooFewJoinedRows);
    }
    let symbols: Vec<String> = qualifying.iter().map(|(s, _)| s.clone()).collect();
    let columns = input_columns(&qualifying, &joined, options.correlation_input);
    let b = symbols.iter().position(|s| s == BENCHMARK).unwrap_or(0);
    let matrix: Vec<Vec<f64>> = columns
        .iter()
        .map(|x| columns.iter().map(|y| pearson(x, y)).collect())
        .collect();
    let per_symbol = symbol_correlations(&symbols, &columns, &matrix, b, options);
    Ok(Correlation {
        benchmark: symbols[b].clone(),
        symbols,
        matrix,
        per_symbol,
        timestamp,
        input: options.correlation_input,
    })
}

/// The inner join on open time: the times every qualifying symbol has, in order.
fn joined_times(qualifying: &[&(String, Vec<Candle>)]) -> Vec<DateTime<Utc>> {
    let mut counts: BTreeMap<DateTime<Utc>, usize> = BTreeMap::new();
    for (_, candles) in qualifying {
        let mut seen: Vec<DateTime<Utc>> = candles.iter().map(|c| c.open_time).collect();
        seen.dedup();
        for t in seen {
            *counts.entry(t).or_default() += 1;
        }
    }
    counts
        .into_iter()
        .filter(|&(_, n)| n == qualifying.len())
        .map(|(t, _)| t)
        .collect()
}

/// Each symbol's close prices at the joined times, or their returns, by `input`.
fn input_columns(
    qualifying: &[&(String, Vec<Candle>)],
    joined: &[DateTime<Utc>],
    input: CorrelationInput,
) -> Vec<Vec<f64>> {
    qualifying
        .iter()
        .map(|(_, candles)| {
            let by_time: BTreeMap<DateTime<Utc>, f64> =
                candles.iter().map(|c| (c.open_time, c.close)).collect();
            let prices: Vec<f64> = joined.iter().map(|t| by_time[t]).collect();
            match input {
                CorrelationInput::Prices => prices,
                CorrelationInput::Returns => pct_change(&prices, 1),
            }
        })
        .collect()
}

/// Each symbol's correlations with the others and, against the benchmark column `b`, its
/// rolling correlation, lead/lag and volatility correlation (neutral for the benchmark itself).
fn symbol_correlations(
    symbols: &[String],
    columns: &[Vec<f64>],
    matrix: &[Vec<f64>],
    b: usize,
    options: &Options,
) -> Vec<SymbolCorrelation> {
    let lag_input = |x: &[f64]| -> Vec<f64> {
        match options.correlation_input {
            CorrelationInput::Prices => x.to_vec(),
            CorrelationInput::Returns => {
                let defined: Vec<f64> = x.iter().copied().filter(|v| !v.is_nan()).collect();
                let m = mean(&defined);
                x.iter().skip(1).map(|v| v - m).collect()
            }
        }
    };
    let bench_vol = rolling(&columns[b], VOLATILITY_WINDOW, sample_std);
    symbols
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let correlations = symbols
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(j, other)| (other.clone(), matrix[i][j]))
                .collect();
            let is_bench = i == b;
            SymbolCorrelation {
                symbol: s.clone(),
                correlations,
                rolling_correlation: if is_bench {
                    0.0
                } else {
                    rolling_pearson_last(&columns[i], &columns[b], ROLLING_WINDOW)
                },
                cross_correlation_lag: if is_bench {
                    None
                } else {
                    cross_correlation_lag(&lag_input(&columns[b]), &lag_input(&columns[i]))
                },
                volatility_correlation: if is_bench {
                    f64::NAN
                } else {
                    pearson(
                        &rolling(&columns[i], VOLATILITY_WINDOW, sample_std),
                        &bench_vol,
                    )
                },
            }
        })
        .collect()
}

impl Correlation {
    /// The per-symbol documents, in symbol order.
    pub fn docs(&self, options: &Options) -> Vec<(String, MetricDoc)> {
        let mut opts = object([("correlation_input", self.input.as_str().into())]);
        options.window_mode_entry(&mut opts);
        self.per_symbol
            .iter()
            .map(|p| {
                let others: Map<String, Value> = p
                    .correlations
                    .iter()
                    .map(|(s, r)| (s.clone(), num_or_null(*r)))
                    .collect();
                let doc = MetricDoc {
                    kind: Kind::Correlation,
                    timestamp: self.timestamp,
                    fields: object([
                        ("correlation_matrix", Value::Object(others)),
                        ("rolling_correlation", num_or_null(p.rolling_correlation)),
                        (
                            "cross_correlation_lag",
                            p.cross_correlation_lag.map_or(Value::Null, Value::from),
                        ),
                        (
                            "volatility_correlation",
                            num_or_null(p.volatility_correlation),
                        ),
                    ]),
                    metadata: Metadata {
                        method: "pearson_correlation",
                        window: "30d",
                        parameters: object([
                            ("symbols", self.symbols.len().into()),
                            ("benchmark", self.benchmark.clone().into()),
                        ]),
                        completeness: 100.0,
                        options: opts.clone(),
                    },
                };
                (p.symbol.clone(), doc)
            })
            .collect()
    }

    /// The encoded (BSON) size of [`Correlation::matrix_json`], computed without encoding it.
    pub fn matrix_bson_len(&self) -> usize {
        // A document is a 4-byte length, its elements and a closing 0; an element is a type
        // byte, the key and its 0, then the value (a double is 8 bytes, a null none).
        let element = |key: &str, value: usize| 1 + key.len() + 1 + value;
        let document = |elements: usize| 4 + elements + 1;
        let rows = self.symbols.iter().zip(&self.matrix).map(|(s, row)| {
            let cells = self.symbols.iter().zip(row);
            let inner = cells.map(|(s2, r)| element(s2, if r.is_finite() { 8 } else { 0 }));
            element(s, document(inner.sum()))
        });
        document(rows.sum())
    }

    /// Whether the matrix document stays under [`MAX_MATRIX_BYTES`], so that it can be
    /// written at all.
    pub fn matrix_fits(&self) -> bool {
        self.matrix_bson_len() <= MAX_MATRIX_BYTES
    }

    /// The matrix `{S: {S2: ρ}}` (doubles, diagonal included).
    pub fn matrix_json(&self) -> Value {
        Value::Object(
            self.symbols
                .iter()
                .zip(&self.matrix)
                .map(|(s, row)| {
                    let inner: Map<String, Value> = self
                        .symbols
                        .iter()
                        .zip(row)
                        .map(|(s2, r)| (s2.clone(), num_or_null(*r)))
                        .collect();
                    (s.clone(), Value::Object(inner))
                })
                .collect(),
        )
    }

    /// The matrix document as `compute` prints it: `{timestamp, timeframe, matrix}`.
    pub fn matrix_doc_json(&self, timeframe: &str) -> Value {
        Value::Object(object([
            ("timestamp", rfc3339(self.timestamp).into()),
            ("timeframe", timeframe.into()),
            ("matrix", self.matrix_json()),
        ]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata::hourly;

    fn sym(name: &str, closes: &[f64]) -> (String, Vec<Candle>) {
        (name.to_owned(), hourly(closes))
    }

    #[test]
    fn the_matrix_size_is_its_encoded_size_nulls_included() {
        let a: Vec<f64> = (0..40).map(|i| f64::from(i) * 1.5 + 2.0).collect();
        let flat = vec![7.0; 40];
        let c = compute(
            &[
                sym("BTCUSDT", &a),
                sym("ETHUSDT", &a),
                sym("FLATUSDT", &flat),
            ],
            &Options::default(),
        )
        .expect("three symbols");
        let encoded = match crate::documents::to_bson(&c.matrix_json()) {
            mongodb::bson::Bson::Document(d) => {
                let mut bytes = Vec::new();
                d.to_writer(&mut bytes).expect("encode");
                bytes.len()
            }
            other => panic!("not a document: {other:?}"),
        };
        assert!(c.matrix.iter().flatten().any(|r| !r.is_finite()), "a null");
        assert_eq!(c.matrix_bson_len(), encoded);
    }

    #[test]
    fn five_hundred_symbols_fit_in_a_document_and_a_thousand_do_not() {
        assert!(
            crate::testdata::square(500).matrix_fits(),
            "{}",
            crate::testdata::square(500).matrix_bson_len()
        );
        assert!(
            !crate::testdata::square(1_000).matrix_fits(),
            "{}",
            crate::testdata::square(1_000).matrix_bson_len()
        );
    }

    #[test]
    fn one_qualifying_symbol_is_too_few() {
        let a: Vec<f64> = (0..30).map(f64::from).collect();
        let r = compute(
            &[sym("ETHUSDT", &a), sym("BTCUSDT", &a[..20])],
            &Options::default(),
        );
        assert_eq!(r, Err(Skip::TooFewSymbols));
    }

    #[test]
    fn a_join_of_fewer_than_twenty_rows_is_too_few() {
        let a: Vec<f64> = (0..30).map(f64::from).collect();
        let mut late = sym("ETHUSDT", &a);
        for c in &mut late.1 {
            c.open_time += chrono::Duration::hours(15);
        }
        let r = compute(&[sym("BTCUSDT", &a), late], &Options::default());
        assert_eq!(r, Err(Skip::TooFewJoinedRows));
    }

    #[test]
    fn btc_is_the_benchmark_and_linear_series_correlate_perfectly() {
        let a: Vec<f64> = (0..40).map(|i| f64::from(i) * 2.0 + 5.0).collect();
        let b: Vec<f64> = (0..40).map(|i| 100.0 - f64::from(i)).collect();
        let r = compute(
            &[sym("ETHUSDT", &b), sym("BTCUSDT", &a)],
            &Options::default(),
        )
        .expect("ok");
        assert_eq!(r.benchmark, "BTCUSDT");
        assert!((r.matrix[0][1] + 1.0).abs() < 1e-12);
        let eth = &r.per_symbol[0];
        assert!((eth.rolling_correlation + 1.0).abs() < 1e-9);
        let btc = &r.per_symbol[1];
        assert_eq!(
            (btc.rolling_correlation, btc.cross_correlation_lag),
            (0.0, None)
        );
        let docs = r.docs(&Options::default());
        assert_eq!(docs[1].1.fields["volatility_correlation"], Value::Null);
        assert_eq!(
            docs[0].1.fields["correlation_matrix"]["BTCUSDT"],
            Value::from(-1.0)
        );
        assert_eq!(docs[0].1.metadata.parameters["benchmark"], "BTCUSDT");
        assert_eq!(r.matrix_json()["ETHUSDT"]["ETHUSDT"], Value::from(1.0));
    }

    #[test]
    fn without_btc_the_first_qualifying_symbol_is_the_benchmark() {
        let a: Vec<f64> = (0..25).map(|i| f64::from(i).sin()).collect();
        let r = compute(
            &[
                sym("XRPUSDT", &a[..10]),
                sym("ETHUSDT", &a),
                sym("BNBUSDT", &a),
            ],
            &Options::default(),
        )
        .expect("ok");
        assert_eq!(r.benchmark, "ETHUSDT");
        assert_eq!(r.symbols, ["ETHUSDT", "BNBUSDT"]);
        // 25 joined rows: the 30-row rolling correlation is undefined → null.
        assert!(r.per_symbol[1].rolling_correlation.is_nan());
        assert_eq!(r.per_symbol[1].cross_correlation_lag, Some(0));
    }
}
