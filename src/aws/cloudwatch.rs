//! CloudWatch metrics calls: the values a dimension takes among a metric's series
//! (ListMetrics) and statistics over a window (GetMetricData). What `metrics` makes of them is
//! the command's.

use std::time::SystemTime;

use anyhow::{Context, Result};
use aws_sdk_cloudwatch::primitives::DateTime;
use aws_sdk_cloudwatch::types::{Dimension, DimensionFilter, Metric, MetricDataQuery, MetricStat};

use super::{Aws, AwsError};

/// The values dimension `wanted` takes among the series of `namespace`/`metric` that have
/// dimension `filter` (name, value): e.g. the models a function's telemetry names. Sorted.
pub async fn dimension_values(
    aws: &Aws,
    namespace: &str,
    metric: &str,
    filter: (&str, &str),
    wanted: &str,
) -> Result<Vec<String>> {
    let mut values = Vec::new();
    let mut pages = aws
        .cloudwatch()
        .list_metrics()
        .namespace(namespace)
        .metric_name(metric)
        .dimensions(
            DimensionFilter::builder()
                .name(filter.0)
                .value(filter.1)
                .build(),
        )
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page
            .map_err(AwsError::from)
            .with_context(|| format!("cannot list the {namespace} metrics (ListMetrics)"))?;
        for metric in page.metrics() {
            let value = metric
                .dimensions()
                .iter()
                .find(|d| d.name() == Some(wanted))
                .and_then(|d| d.value());
            if let Some(value) = value {
                if !values.iter().any(|v| v == value) {
                    values.push(value.to_string());
                }
            }
        }
    }
    values.sort();
    Ok(values)
}

/// Which statistics of which series, over which window.
#[derive(Debug, Clone, Copy)]
pub struct Query<'a> {
    pub namespace: &'a str,
    /// (name, value) of each dimension.
    pub dimensions: &'a [(&'a str, &'a str)],
    /// (metric, statistic) pairs: `Sum`, `Maximum`, `p95`, …
    pub wanted: &'a [(&'a str, &'a str)],
    pub start: SystemTime,
    pub end: SystemTime,
    /// Seconds per datapoint.
    pub period: i32,
}

/// GetMetricData, every page: for each wanted (metric, statistic), its datapoints as
/// (seconds since the epoch, value), in the order CloudWatch gave them.
pub async fn metric_data(aws: &Aws, query: Query<'_>) -> Result<Vec<Vec<(i64, f64)>>> {
    let dimensions: Vec<Dimension> = query
        .dimensions
        .iter()
        .map(|(name, value)| Dimension::builder().name(*name).value(*value).build())
        .collect();
    let queries: Vec<MetricDataQuery> = query
        .wanted
        .iter()
        .enumerate()
        .map(|(i, (metric, stat))| {
            MetricDataQuery::builder()
                .id(format!("m{i}"))
                .metric_stat(
                    MetricStat::builder()
                        .metric(
                            Metric::builder()
                                .namespace(query.namespace)
                                .metric_name(*metric)
                                .set_dimensions(Some(dimensions.clone()))
                                .build(),
                        )
                        .period(query.period)
                        .stat(*stat)
                        .build(),
                )
                .build()
        })
        .collect();
    let mut points: Vec<Vec<(i64, f64)>> = vec![Vec::new(); query.wanted.len()];
    let mut pages = aws
        .cloudwatch()
        .get_metric_data()
        .set_metric_data_queries(Some(queries))
        .start_time(DateTime::from(query.start))
        .end_time(DateTime::from(query.end))
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page
            .map_err(AwsError::from)
            .context("cannot read CloudWatch metrics (GetMetricData)")?;
        for result in page.metric_data_results() {
            let Some(i) = result
                .id()
                .and_then(|id| id.strip_prefix('m'))
                .and_then(|n| n.parse::<usize>().ok())
            else {
                continue;
            };
            if let Some(list) = points.get_mut(i) {
                for (t, v) in result.timestamps().iter().zip(result.values()) {
                    list.push((t.secs(), *v));
                }
            }
        }
    }
    Ok(points)
}

/// Seconds since the epoch, as CloudWatch stamps datapoints.
pub fn epoch_secs(t: SystemTime) -> i64 {
    DateTime::from(t).secs()
}
