//! The OpenAPI 3.1 document, generated from the handlers' attributes and the response types.

use utoipa::OpenApi;

use crate::model::{
    AnalyticsPoint, AnalyticsResponse, AnalyticsSeries, CorrelationMatrix, DatasetDetail,
    DatasetList, DatasetSummary, Finding, FindingsPage, HealthPoint, Kind, Metric, Problem,
    Severity, Status, Timeframe,
};
use crate::params::FindingState;
use crate::routes;

/// The API's description; `GET /openapi.json` serves it.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "dm-api",
        description = "Read-only access to the data manager's results: every dataset's health, \
                       the auditor's findings and the market analytics. Errors are \
                       application/problem+json (RFC 9457).",
    ),
    paths(
        routes::list_datasets,
        routes::get_dataset,
        routes::list_findings,
        routes::get_analytics,
        routes::get_correlation,
        routes::status_page,
    ),
    components(schemas(
        DatasetList, DatasetSummary, DatasetDetail, HealthPoint, Finding, FindingsPage,
        AnalyticsResponse, AnalyticsSeries, AnalyticsPoint, CorrelationMatrix, Problem, Status,
        Severity, Kind, Timeframe, Metric, FindingState,
    )),
    tags(
        (name = "datasets", description = "The auditor's health per symbol and timeframe"),
        (name = "findings", description = "The auditor's findings"),
        (name = "analytics", description = "Market analytics"),
        (name = "page", description = "The HTML status page"),
    )
)]
pub struct ApiDoc;

/// The document as JSON text.
pub fn json() -> String {
    ApiDoc::openapi()
        .to_pretty_json()
        .unwrap_or_else(|_| "{}".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_openapi_3_1_with_every_route() {
        let v: serde_json::Value = serde_json::from_str(&json()).expect("JSON");
        assert_eq!(v["openapi"], "3.1.0");
        let paths: Vec<&str> = v["paths"]
            .as_object()
            .expect("paths")
            .keys()
            .map(String::as_str)
            .collect();
        for p in [
            "/v1/datasets",
            "/v1/datasets/{symbol}/{timeframe}",
            "/v1/findings",
            "/v1/analytics/{metric}/{symbol}",
            "/v1/correlation",
            "/",
        ] {
            assert!(paths.contains(&p), "{p} missing from {paths:?}");
        }
        let bad = &v["paths"]["/v1/findings"]["get"]["responses"]["400"]["content"];
        assert!(bad.get("application/problem+json").is_some(), "{bad}");
    }
}
