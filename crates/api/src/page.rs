//! The status page at `/`: server-rendered HTML, no JavaScript. A grid of symbols × timeframes
//! coloured by status with quality and freshness, the open findings newest first, and when each
//! scheduler's leader last wrote. It reloads itself with a `<meta http-equiv="refresh">`.

use std::collections::BTreeSet;

use chrono::{DateTime, SecondsFormat, Utc};
use maud::{DOCTYPE, Markup, html};

use crate::model::{DatasetSummary, Finding, Timeframe};
use crate::params::FindingState;
use crate::problem::ApiError;
use crate::queries::{self, DatasetFilter, FenceInfo, FindingFilter};
use crate::read::Reader;

/// Open findings listed on the page, newest first.
pub const PAGE_FINDINGS: u32 = 50;

/// What the page shows.
#[derive(Debug, Clone, PartialEq)]
pub struct PageData {
    /// Every dataset's latest health.
    pub datasets: Vec<DatasetSummary>,
    /// Open findings, newest first.
    pub findings: Vec<Finding>,
    /// One per scheduler Lease.
    pub fences: Vec<FenceInfo>,
    /// When the newest audit ran.
    pub newest_audit: Option<DateTime<Utc>>,
}

/// Reads what the page shows.
///
/// # Errors
/// [`ApiError`] when Mongo fails.
pub async fn load(r: &Reader, lookback: chrono::Duration) -> Result<PageData, ApiError> {
    let (datasets, _) = queries::datasets(r, &DatasetFilter::default(), lookback).await?;
    let open = FindingFilter {
        state: FindingState::Open,
        ..FindingFilter::default()
    };
    let findings = queries::findings(r, &open, PAGE_FINDINGS).await?.findings;
    Ok(PageData {
        datasets,
        findings,
        fences: queries::fences(r).await?,
        newest_audit: queries::newest_audit(r).await?,
    })
}

/// `90s`, `45m`, `5h`, `3d`.
pub fn human_seconds(s: i64) -> String {
    match s {
        ..120 => format!("{s}s"),
        120..7_200 => format!("{}m", s / 60),
        7_200..172_800 => format!("{}h", s / 3_600),
        _ => format!("{}d", s / 86_400),
    }
}

fn instant(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn ago(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    format!("{} ago", human_seconds((now - t).num_seconds().max(0)))
}

const STYLE: &str = "
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0;padding:1rem;color:#1f2328;background:#f6f8fa}
h1{font-size:1.4rem;margin:0 0 .25rem} h2{font-size:1.1rem;margin:1.5rem 0 .5rem}
.meta{color:#59636e;font-size:.85rem;margin:0 0 1rem}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch}
table{border-collapse:collapse;background:#fff;font-size:.9rem}
th,td{border:1px solid #d1d9e0;padding:.35rem .5rem;text-align:left;vertical-align:top}
th{background:#eef1f4;position:sticky;left:0}
td.cell{min-width:6.5rem;text-align:center}
.cell .st{display:block;font-weight:600}
.cell .q,.cell .f{display:block;font-size:.78rem}
.status-ok{background:#dafbe1;color:#116329}
.status-warn{background:#fff8c5;color:#7d4e00}
.status-critical{background:#ffebe9;color:#a40e26}
.status-no_data{background:#e6e6e6;color:#3b3b3b}
.status-not_extracted,.status-table_missing{background:#f0f0f0;color:#59636e}
.none{color:#8c959f}
.sev-high{color:#a40e26;font-weight:600} .sev-medium{color:#7d4e00} .sev-info{color:#59636e}
.err{background:#ffebe9;border:1px solid #cf222e;padding:.75rem;border-radius:6px}
@media (max-width:600px){body{padding:.5rem} th,td{padding:.25rem .3rem} td.cell{min-width:4.5rem}}
";

fn shell(title: &str, refresh: u64, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta http-equiv="refresh" content=(refresh);
                title { (title) }
                style { (maud::PreEscaped(STYLE)) }
            }
            body { (body) }
        }
    }
}

fn grid(datasets: &[DatasetSummary], now: DateTime<Utc>) -> Markup {
    let symbols: BTreeSet<&str> = datasets.iter().map(|d| d.symbol.as_str()).collect();
    let timeframes: BTreeSet<Timeframe> = datasets.iter().map(|d| d.timeframe).collect();
    html! {
        div.scroll {
            table #grid {
                thead { tr {
                    th { "Symbol" }
                    @for tf in &timeframes { th scope="col" { (tf.label()) } }
                } }
                tbody {
                    @for symbol in &symbols {
                        tr {
                            th scope="row" { (symbol) }
                            @for tf in &timeframes {
                                @match datasets.iter().find(|d| d.symbol == *symbol && d.timeframe == *tf) {
                                    Some(d) => td class={ "cell status-" (d.status.as_str()) }
                                        data-symbol=(symbol) data-timeframe=(tf.label())
                                        data-status=(d.status.as_str())
                                        title={ "audited " (instant(d.audited_at)) "; open findings " (d.open_findings) } {
                                        span.st { (d.status.as_str()) }
                                        span.q { "Q " (d.quality_score.map_or("–".to_owned(), |q| format!("{q:.1}"))) }
                                        span.f { "fresh " (d.freshness_seconds.map_or("–".to_owned(), human_seconds)) }
                                    },
                                    None => td.cell.none data-symbol=(symbol) data-timeframe=(tf.label()) { "–" },
                                }
                            }
                        }
                    }
                }
            }
        }
        p.meta { "Audited " (datasets.iter().map(|d| d.audited_at).max().map_or("never".to_owned(), |t| ago(t, now))) }
    }
}

fn findings(list: &[Finding]) -> Markup {
    html! {
        @if list.is_empty() {
            p #no-findings { "No open findings." }
        } @else {
            div.scroll {
                table #findings {
                    thead { tr { th { "Time" } th { "Dataset" } th { "Kind" } th { "Severity" } th { "Details" } } }
                    tbody {
                        @for f in list {
                            tr data-id=(f.id) {
                                td { (instant(f.timestamp)) }
                                td { (f.symbol) " " (f.timeframe.label()) }
                                td { (f.kind.as_str()) }
                                td class={ "sev-" (f.severity.as_str()) } { (f.severity.as_str()) }
                                td { (f.details) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn schedulers(
    fences: &[FenceInfo],
    newest_audit: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Markup {
    html! {
        div.scroll {
            table #schedulers {
                thead { tr { th { "Lease" } th { "Leader" } th { "Term" } th { "Last cycle written" } } }
                tbody {
                    @for f in fences {
                        tr data-lease=(f.lease) {
                            td { (f.lease) }
                            td.leader { (f.holder) }
                            td { (f.term) }
                            td { (f.updated_at.map_or("never".to_owned(), |t| format!("{} ({})", instant(t), ago(t, now)))) }
                        }
                    }
                }
            }
        }
        @if let Some(t) = newest_audit {
            p.meta #newest-audit { "Newest audit: " (instant(t)) " (" (ago(t, now)) ")" }
        }
    }
}

/// The page.
pub fn render(data: &PageData, now: DateTime<Utc>, refresh: u64) -> Markup {
    shell(
        "Data manager status",
        refresh,
        html! {
            h1 { "Data manager status" }
            p.meta { "As of " (instant(now)) "; reloads every " (refresh) " s. "
                a href="/openapi.json" { "API (OpenAPI)" } }
            h2 { "Datasets" }
            @if data.datasets.is_empty() { p { "No audit results yet." } } @else { (grid(&data.datasets, now)) }
            h2 { "Open findings" }
            (findings(&data.findings))
            h2 { "Schedulers" }
            (schedulers(&data.fences, data.newest_audit, now))
        },
    )
}

/// The page when the results cannot be read.
pub fn render_error(e: &ApiError, now: DateTime<Utc>, refresh: u64) -> Markup {
    shell(
        "Data manager status: unavailable",
        refresh,
        html! {
            h1 { "Data manager status" }
            p.err #error { "The results database cannot be read right now: " (e.problem().detail) }
            p.meta { "As of " (instant(now)) "; retrying every " (refresh) " s." }
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Status;
    use store::testing::at;

    #[test]
    fn durations_read_at_a_glance() {
        let got: Vec<String> = [5, 119, 120, 7_199, 7_200, 172_800]
            .into_iter()
            .map(human_seconds)
            .collect();
        assert_eq!(got, ["5s", "119s", "2m", "119m", "2h", "2d"]);
    }

    #[test]
    fn cells_carry_status_and_text_is_escaped() {
        let now = at(2025, 10, 21, 12, 0, 0);
        let d = DatasetSummary {
            symbol: "BTCUSDT".into(),
            timeframe: Timeframe::H1,
            status: Status::Critical,
            quality_score: Some(87.25),
            completeness: None,
            freshness_seconds: Some(1800),
            open_findings: 1,
            audited_at: now,
        };
        let f = Finding {
            id: "x".into(),
            symbol: "BTCUSDT".into(),
            timeframe: Timeframe::H1,
            kind: crate::model::Kind::Gap,
            severity: crate::model::Severity::High,
            details: "<script>alert(1)</script>".into(),
            start: None,
            end: None,
            open_time: None,
            timestamp: now,
            missing_candles: None,
            duration_seconds: None,
            first_seen: None,
            last_seen: None,
            resolved_at: None,
            leader_term: None,
        };
        let data = PageData {
            datasets: vec![d],
            findings: vec![f],
            fences: vec![],
            newest_audit: Some(now),
        };
        let html = render(&data, now, 30).into_string();
        assert!(html.contains(r#"class="cell status-critical" data-symbol="BTCUSDT" data-timeframe="1h" data-status="critical""#), "{html}");
        assert!(html.contains("Q 87.2") || html.contains("Q 87.3"), "{html}");
        assert!(html.contains("fresh 30m"));
        assert!(!html.contains("<script>"), "details must be escaped");
        assert!(html.contains(r#"http-equiv="refresh" content="30""#));
    }
}
