//! A cycle against real MariaDB and the Mongo-compatible server: the documents written, an
//! idempotent re-run, 1h and 1d kept apart, fencing of an older term, and `run` as a process.

use std::time::Duration;

use analytics::config::Settings;
use analytics::golden::{series_a, series_b};
use analytics::options::Options;
use analytics::reads::analyze_all;
use analytics::write::{ensure_indexes, write_analyses};
use chrono::{DateTime, Utc};
use mongodb::bson::{Bson, Document, doc};
use rust_decimal::Decimal;
use store::testing::{MariaDb, candle, drop_mongo_database, mongo_url};
use store::{Fence, Kline, KlineSource, MongoSink, Timeframe};
use testkit::{eventually, free_port, metric};

fn tf(s: &str) -> Timeframe {
    s.parse().expect("timeframe")
}

fn dec(x: f64) -> Decimal {
    format!("{x:.8}").parse().expect("decimal")
}

/// The golden candles re-timed so the newest opens at `newest`, one `step` apart.
fn klines(
    symbol: &str,
    t: Timeframe,
    golden: &[analytics::candle::Candle],
    newest: DateTime<Utc>,
) -> Vec<Kline> {
    let n = golden.len() as i64;
    golden
        .iter()
        .enumerate()
        .map(|(i, g)| {
            let open = newest - chrono::Duration::seconds(t.seconds() * (n - 1 - i as i64));
            let mut k = candle(symbol, t, open);
            k.open = dec(g.open);
            k.high = dec(g.high);
            k.low = dec(g.low);
            k.close = dec(g.close);
            k.volume = dec(g.volume);
            k
        })
        .collect()
}

/// BTCUSDT = Series A and ETHUSDT = Series B: 720 hourly rows up to the current hour, 40 daily
/// rows up to today.
async fn seeded() -> (MariaDb, DateTime<Utc>, DateTime<Utc>) {
    let db = MariaDb::create().await;
    let now = Utc::now().timestamp();
    let hour = DateTime::from_timestamp(now / 3600 * 3600, 0).expect("hour");
    let day = DateTime::from_timestamp(now / 86_400 * 86_400, 0).expect("day");
    for (sym, g) in [("BTCUSDT", series_a(720)), ("ETHUSDT", series_b(720))] {
        db.insert(tf("1h"), sym, &klines(sym, tf("1h"), &g, hour))
            .await;
        db.insert(tf("1d"), sym, &klines(sym, tf("1d"), &g[..40], day))
            .await;
    }
    (db, hour, day)
}

async fn coll(url: &str, name: &str) -> mongodb::Collection<Document> {
    let client = mongodb::Client::with_uri_str(url).await.expect("client");
    client
        .database(&store::mongo_url::database_name(url))
        .collection(name)
}

async fn count(url: &str, name: &str, filter: Document) -> u64 {
    coll(url, name)
        .await
        .count_documents(filter)
        .await
        .unwrap_or(0)
}

/// BTCUSDT and ETHUSDT on 1h and 1d.
fn two_symbols_two_timeframes() -> Settings {
    Settings {
        symbols: vec!["BTCUSDT".into(), "ETHUSDT".into()],
        timeframes: vec![tf("1h"), tf("1d")],
        options: Options::default(),
        db_timeout: Duration::from_secs(10),
    }
}

/// BTCUSDT's 1h volatility: Series A's rolling standard deviation, stamped with the current
/// hour, term 2 and complete metadata. Returns the document.
async fn assert_the_hourly_volatility(url: &str, hour: DateTime<Utc>) -> Document {
    let vol = coll(url, "analytics_volatility")
        .await
        .find_one(doc! { "symbol": "BTCUSDT", "timeframe": "1h" })
        .await
        .expect("query")
        .expect("BTCUSDT 1h volatility");
    let sd = vol.get_f64("rolling_stddev").expect("a double");
    assert!(
        ((sd - 0.006272639780820264) / 0.006272639780820264).abs() < 1e-9,
        "{sd}"
    );
    assert_eq!(
        vol.get("timestamp"),
        Some(&Bson::DateTime(mongodb::bson::DateTime::from_millis(
            hour.timestamp_millis()
        )))
    );
    assert_eq!(vol.get_i64("leader_term"), Ok(2));
    let meta = vol.get_document("metadata").expect("metadata");
    assert!(matches!(meta.get("computed_at"), Some(Bson::DateTime(_))));
    assert_eq!(meta.get_f64("completeness"), Ok(100.0));
    vol
}

/// BTCUSDT's 1d volatility is its own document, stamped with today, unlike the 1h one.
async fn assert_the_daily_volatility_is_apart(url: &str, day: DateTime<Utc>, hourly: &Document) {
    let daily = coll(url, "analytics_volatility")
        .await
        .find_one(doc! { "symbol": "BTCUSDT", "timeframe": "1d" })
        .await
        .expect("query")
        .expect("BTCUSDT 1d volatility");
    assert_eq!(
        daily.get("timestamp"),
        Some(&Bson::DateTime(mongodb::bson::DateTime::from_millis(
            day.timestamp_millis()
        )))
    );
    assert_ne!(
        daily.get_f64("rolling_stddev"),
        hourly.get_f64("rolling_stddev")
    );
}

/// ETHUSDT's seasonality has 24 hours, the correlation matrix a BTCUSDT × ETHUSDT number, and
/// no regime is computed on 1d.
async fn assert_seasonality_matrix_and_no_daily_regime(url: &str) {
    let season = coll(url, "analytics_seasonality")
        .await
        .find_one(doc! { "symbol": "ETHUSDT" })
        .await
        .expect("query")
        .expect("seasonality");
    assert_eq!(
        season.get_document("hourly_pattern").map(|d| d.len()),
        Ok(24)
    );
    let matrix = coll(url, "analytics_correlation_matrix")
        .await
        .find_one(doc! {})
        .await
        .expect("query")
        .expect("matrix");
    let m = matrix.get_document("matrix").expect("matrix");
    assert!(matches!(
        m.get_document("BTCUSDT").expect("row").get("ETHUSDT"),
        Some(Bson::Double(_))
    ));
    assert_eq!(
        count(url, "analytics_regime", doc! { "timeframe": "1d" }).await,
        0
    );
}

/// A second cycle in the same hour upserts the same keys: two volatility documents per
/// timeframe, no more. Returns that cycle's analyses.
async fn assert_a_rerun_upserts_the_same_keys(
    source: &KlineSource,
    sink: &MongoSink,
    fence: &Fence,
    url: &str,
) -> Vec<analytics::analysis::Analysis> {
    let settings = two_symbols_two_timeframes();
    let before = count(url, "analytics_volatility", doc! {}).await;
    let analyses = analyze_all(source, &settings, Utc::now())
        .await
        .expect("reads");
    write_analyses(
        sink,
        fence,
        &analyses,
        &settings.options,
        Utc::now(),
        &never(),
    )
    .await
    .expect("rewrite");
    assert_eq!(count(url, "analytics_volatility", doc! {}).await, before);
    assert_eq!(
        count(url, "analytics_volatility", doc! { "timeframe": "1h" }).await,
        2
    );
    assert_eq!(
        count(url, "analytics_volatility", doc! { "timeframe": "1d" }).await,
        2
    );
    analyses
}

/// An older term than `fence`'s is fenced off before it writes anything.
async fn assert_an_older_term_is_fenced(
    sink: &MongoSink,
    fence: &Fence,
    analyses: &[analytics::analysis::Analysis],
    url: &str,
) {
    let stale = Fence {
        term: 1,
        ..fence.clone()
    };
    let e = write_analyses(
        sink,
        &stale,
        analyses,
        &Options::default(),
        Utc::now(),
        &never(),
    )
    .await
    .expect_err("older term");
    assert!(e.is_fenced(), "{e}");
    let vol = coll(url, "analytics_volatility")
        .await
        .find_one(doc! { "symbol": "BTCUSDT", "timeframe": "1h" })
        .await
        .expect("query")
        .expect("doc");
    assert_eq!(vol.get_i64("leader_term"), Ok(2));
}

#[tokio::test]
async fn a_cycle_writes_every_document_once_keeps_timeframes_apart_and_fences_older_terms() {
    let (db, hour, day) = seeded().await;
    let url = mongo_url();
    let settings = two_symbols_two_timeframes();
    let source = KlineSource::connect_lazy(db.options(), Duration::from_secs(10));
    let sink = MongoSink::connect(&url, "analytics-test", Duration::from_secs(10))
        .await
        .expect("sink");
    ensure_indexes(&sink).await.expect("indexes");
    let fence = Fence::new("data-manager-analytics", 2, "test");
    let now = Utc::now();
    let analyses = analyze_all(&source, &settings, now).await.expect("reads");
    let counts = write_analyses(&sink, &fence, &analyses, &settings.options, now, &never())
        .await
        .expect("write");
    let expected: Vec<(&str, u64)> = vec![
        ("correlation", 2),
        ("correlation_matrix", 1),
        ("deviation", 4),
        ("regime", 2),
        ("seasonality", 2),
        ("trend", 2),
        ("volatility", 4),
        ("volume", 2),
    ];
    assert_eq!(counts.into_iter().collect::<Vec<_>>(), expected);
    let hourly = assert_the_hourly_volatility(&url, hour).await;
    assert_the_daily_volatility_is_apart(&url, day, &hourly).await;
    assert_seasonality_matrix_and_no_daily_regime(&url).await;

    let analyses = assert_a_rerun_upserts_the_same_keys(&source, &sink, &fence, &url).await;
    assert_an_older_term_is_fenced(&sink, &fence, &analyses, &url).await;
    source.close().await;
    drop_mongo_database(&url).await;
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn run_cycles_while_leading_and_reruns_leave_the_counts_unchanged() {
    let (db, _, _) = seeded().await;
    let url = mongo_url();
    let port = free_port();
    let log = std::env::temp_dir().join(format!(
        "dm-analytics-{}.log",
        uuid::Uuid::new_v4().simple()
    ));
    let out = std::fs::File::create(&log).expect("log");
    let _child = Child(
        std::process::Command::new(env!("CARGO_BIN_EXE_dm-analytics"))
            .arg("run")
            .env_clear()
            .env("MYSQL_URI", db.url.replace("mysql://", "mysql+pymysql://"))
            .env("MONGODB_URL", &url)
            .env("SUPPORTED_PAIRS", "BTCUSDT,ETHUSDT")
            .env("ANALYTICS_INTERVAL", "1s")
            .env("PROBE_INTERVAL", "200ms")
            .env("LEADER_ELECTION", "disabled")
            .env("METRICS_PORT", port.to_string())
            .env("METRICS_HOST", "127.0.0.1")
            .env("LOG_FORMAT", "text")
            .stdout(out.try_clone().expect("dup"))
            .stderr(out)
            .spawn()
            .expect("spawn dm-analytics"),
    );
    let within = Duration::from_secs(60);
    let ok = "data_manager_analytics_cycles_total{outcome=\"ok\"}";
    eventually(within, || async {
        (metric(port, ok)? >= 3.0).then_some(())
    })
    .await;
    let n = count(&url, "analytics_volatility", doc! {}).await;
    assert_eq!(n, 4);
    assert_eq!(count(&url, "analytics_regime", doc! {}).await, 2);
    assert_eq!(
        metric(port, "data_manager_analytics_leader_status"),
        Some(1.0)
    );
    let written = metric(
        port,
        "data_manager_analytics_documents_written_total{metric=\"volatility\"}",
    )
    .expect("written");
    assert!(written >= 12.0, "{written}");
    let skipped = metric(
        port,
        "data_manager_analytics_skipped_total{metric=\"volume\",reason=\"too_few_candles\"}",
    )
    .expect("1d volume is always skipped");
    assert!(skipped >= 6.0, "{skipped}");
    assert_eq!(count(&url, "analytics_volatility", doc! {}).await, 4);
    let text = std::fs::read_to_string(&log).expect("log");
    assert!(
        text.contains("Analytics cycle complete: calculated 19 metrics"),
        "{text}"
    );
    let _ = std::fs::remove_file(&log);
    drop_mongo_database(&url).await;
}

fn never() -> tokio_util::sync::CancellationToken {
    tokio_util::sync::CancellationToken::new()
}

/// ETHUSDT's newest 1h row gets a NULL close (undecodable) and `klines_d1` loses a column.
async fn break_ethusdt_1h_and_the_daily_table(db: &MariaDb, hour: DateTime<Utc>) {
    use sqlx::{AssertSqlSafe, Executor};

    let bad_id = format!("ETHUSDT_{}", hour.timestamp_millis());
    let mut conn = db.pool.acquire().await.expect("connection");
    for sql in [
        "ALTER TABLE klines_h1 MODIFY close_price DECIMAL(20,8) NULL".to_owned(),
        format!("UPDATE klines_h1 SET close_price = NULL WHERE id = '{bad_id}'"),
        "ALTER TABLE klines_d1 DROP COLUMN quote_asset_volume".to_owned(),
    ] {
        conn.execute(AssertSqlSafe(sql.clone())).await.expect(&sql);
    }
}

/// The (metric, reason) pairs skipped for `symbol` in `a`.
fn skipped(
    a: &analytics::analysis::Analysis,
    symbol: &str,
) -> Vec<(analytics::metric::Kind, analytics::metric::Skip)> {
    a.symbols
        .iter()
        .filter(|s| s.symbol == symbol)
        .flat_map(|s| s.metrics.iter())
        .filter_map(|(k, r)| r.as_ref().err().map(|e| (*k, *e)))
        .collect()
}

/// On 1h, ETHUSDT's every metric is skipped for its undecodable row and BTCUSDT's none; on 1d,
/// every skip is the schema mismatch.
fn assert_only_the_broken_datasets_are_skipped(analyses: &[analytics::analysis::Analysis]) {
    use analytics::metric::{Kind, Skip};

    let (h1, d1) = (&analyses[0], &analyses[1]);
    assert_eq!(skipped(h1, "BTCUSDT"), []);
    assert_eq!(
        skipped(h1, "ETHUSDT"),
        [
            (Kind::Volatility, Skip::UndecodableRow),
            (Kind::Volume, Skip::UndecodableRow),
            (Kind::Trend, Skip::UndecodableRow),
            (Kind::Deviation, Skip::UndecodableRow),
            (Kind::Seasonality, Skip::UndecodableRow),
            (Kind::Regime, Skip::UndecodableRow),
        ]
    );
    assert_eq!(h1.skipped()[&(Kind::Volatility, Skip::UndecodableRow)], 1);
    for symbol in ["BTCUSDT", "ETHUSDT"] {
        assert!(
            skipped(d1, symbol)
                .iter()
                .all(|(_, r)| *r == Skip::SchemaMismatch),
            "{symbol}"
        );
    }
}

/// One symbol × timeframe that cannot be used (a row that does not decode, a table lacking a
/// column) is skipped with its reason; every other one is still analysed and written.
#[tokio::test]
async fn an_unreadable_symbol_or_table_is_skipped_and_the_rest_is_written() {
    let (db, hour, _) = seeded().await;
    break_ethusdt_1h_and_the_daily_table(&db, hour).await;
    let settings = two_symbols_two_timeframes();
    let source = KlineSource::connect_lazy(db.options(), Duration::from_secs(10));
    let analyses = analyze_all(&source, &settings, Utc::now())
        .await
        .expect("a bad symbol must not fail the cycle");
    assert_only_the_broken_datasets_are_skipped(&analyses);
    let url = mongo_url();
    let sink = MongoSink::connect(&url, "analytics-test", Duration::from_secs(10))
        .await
        .expect("sink");
    let fence = Fence::new("data-manager-analytics", 1, "test");
    write_analyses(
        &sink,
        &fence,
        &analyses,
        &settings.options,
        Utc::now(),
        &never(),
    )
    .await
    .expect("the rest is written");
    assert_eq!(
        count(
            &url,
            "analytics_volatility",
            doc! { "symbol": "BTCUSDT", "timeframe": "1h" }
        )
        .await,
        1
    );
    assert_eq!(
        count(&url, "analytics_volatility", doc! { "symbol": "ETHUSDT" }).await,
        0
    );
    source.close().await;
    drop_mongo_database(&url).await;
}
