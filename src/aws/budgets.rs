//! AWS Budgets calls: a stage's monthly cost budget over the services the function is billed
//! under, with its two e-mail alerts (80 % of the forecast, 100 % of actual spend). What a
//! deploy asks for, and how it reconciles, is `crate::budget`'s.

use std::fmt;

use anyhow::{Context, Result};
use aws_sdk_budgets::types::{
    Budget, BudgetType, ComparisonOperator, Dimension, Expression, ExpressionDimensionValues,
    Notification, NotificationType, NotificationWithSubscribers, Spend, Subscriber,
    SubscriptionType, ThresholdType, TimeUnit,
};
use serde::Serialize;

use super::{Aws, AwsError, Found};

/// A budget's limit and who its alerts e-mail.
#[derive(Debug, Clone)]
pub struct Limit<'a> {
    /// US dollars with two places, as Budgets stores it (`12.50`).
    pub amount: String,
    pub email: &'a str,
}

/// The services the function's use is billed under (Cost Explorer's SERVICE dimension): the
/// function itself, its images, and its logs, alarm and dashboard.
pub const SERVICES: [&str; 3] = [
    "AWS Lambda",
    "Amazon EC2 Container Registry (ECR)",
    "AmazonCloudWatch",
];

/// When the e-mails go: (kind, percent of the limit).
pub const ALERTS: [(NotificationType, f64); 2] = [
    (NotificationType::Forecasted, 80.0),
    (NotificationType::Actual, 100.0),
];

/// A budget as Budgets describes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BudgetState {
    pub name: String,
    pub limit_usd: f64,
    /// Spent this month so far (Budgets updates it a few times a day).
    pub actual_usd: Option<f64>,
    /// Budgets' forecast for the month.
    pub forecast_usd: Option<f64>,
}

impl fmt::Display for BudgetState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "${:.2}/month", self.limit_usd)?;
        if let Some(spent) = self.actual_usd {
            write!(f, "; ${spent:.2} spent this month")?;
        }
        if let Some(forecast) = self.forecast_usd.filter(|&x| x > 0.0) {
            write!(f, " (forecast ${forecast:.2})")?;
        }
        Ok(())
    }
}

fn spend_usd(spend: Option<&Spend>) -> Option<f64> {
    spend.and_then(|s| s.amount().parse().ok())
}

/// The budget, if it exists.
pub async fn describe(aws: &Aws, account: &str, name: &str) -> Result<Option<BudgetState>> {
    let out = aws
        .budgets()
        .describe_budget()
        .account_id(account)
        .budget_name(name)
        .send()
        .await
        .found()
        .with_context(|| format!("cannot read budget {name} (Budgets DescribeBudget)"))?;
    Ok(out.as_ref().and_then(|out| out.budget()).map(|budget| {
        let spent = budget.calculated_spend();
        BudgetState {
            name: budget.budget_name().to_string(),
            limit_usd: spend_usd(budget.budget_limit()).unwrap_or_default(),
            actual_usd: spend_usd(spent.and_then(|s| s.actual_spend())),
            forecast_usd: spend_usd(spent.and_then(|s| s.forecasted_spend())),
        }
    }))
}

fn budget_of(name: &str, limit: &Limit<'_>) -> Result<Budget> {
    let service = ExpressionDimensionValues::builder()
        .key(Dimension::Service)
        .set_values(Some(SERVICES.iter().map(|s| s.to_string()).collect()))
        .build()
        .context("cannot build the budget's service filter")?;
    Budget::builder()
        .budget_name(name)
        .budget_type(BudgetType::Cost)
        .time_unit(TimeUnit::Monthly)
        .budget_limit(
            Spend::builder()
                .amount(&limit.amount)
                .unit("USD")
                .build()
                .context("cannot build the budget's limit")?,
        )
        .filter_expression(Expression::builder().dimensions(service).build())
        .build()
        .context("cannot build the budget")
}

fn notification_of(kind: NotificationType, percent: f64) -> Result<Notification> {
    Notification::builder()
        .notification_type(kind)
        .comparison_operator(ComparisonOperator::GreaterThan)
        .threshold(percent)
        .threshold_type(ThresholdType::Percentage)
        .build()
        .context("cannot build the budget's notification")
}

fn subscriber_of(email: &str) -> Result<Subscriber> {
    Subscriber::builder()
        .subscription_type(SubscriptionType::Email)
        .address(email)
        .build()
        .context("cannot build the budget's subscriber")
}

/// Creates the budget with its two e-mail alerts.
pub async fn create(aws: &Aws, account: &str, name: &str, limit: &Limit<'_>) -> Result<()> {
    let subscriber = subscriber_of(limit.email)?;
    let mut request = aws
        .budgets()
        .create_budget()
        .account_id(account)
        .budget(budget_of(name, limit)?);
    for (kind, percent) in ALERTS {
        request = request.notifications_with_subscribers(
            NotificationWithSubscribers::builder()
                .notification(notification_of(kind, percent)?)
                .subscribers(subscriber.clone())
                .build()
                .context("cannot build the budget's notification")?,
        );
    }
    request
        .send()
        .await
        .map_err(AwsError::from)
        .with_context(|| format!("cannot create budget {name} (Budgets CreateBudget)"))?;
    Ok(())
}

/// Changes the budget in place (Budgets UpdateBudget keeps its alerts and history); when the
/// alerts' address changes, each alert is made again for the new one (`old_email`: what the
/// stack's tags recorded, `None` when unknown).
pub async fn update(
    aws: &Aws,
    account: &str,
    name: &str,
    limit: &Limit<'_>,
    old_email: Option<&str>,
) -> Result<()> {
    aws.budgets()
        .update_budget()
        .account_id(account)
        .new_budget(budget_of(name, limit)?)
        .send()
        .await
        .map_err(AwsError::from)
        .with_context(|| format!("cannot update budget {name} (Budgets UpdateBudget)"))?;
    if old_email == Some(limit.email) {
        return Ok(());
    }
    let subscriber = subscriber_of(limit.email)?;
    for (kind, percent) in ALERTS {
        let notification = notification_of(kind, percent)?;
        aws.budgets()
            .delete_notification()
            .account_id(account)
            .budget_name(name)
            .notification(notification.clone())
            .send()
            .await
            .found()
            .with_context(|| {
                format!("cannot replace an alert of budget {name} (Budgets DeleteNotification)")
            })?;
        aws.budgets()
            .create_notification()
            .account_id(account)
            .budget_name(name)
            .notification(notification)
            .subscribers(subscriber.clone())
            .send()
            .await
            .map_err(AwsError::from)
            .with_context(|| {
                format!("cannot set an alert of budget {name} (Budgets CreateNotification)")
            })?;
    }
    Ok(())
}

/// Deletes the budget; `false` when there was none.
pub async fn delete(aws: &Aws, account: &str, name: &str) -> Result<bool> {
    let deleted = aws
        .budgets()
        .delete_budget()
        .account_id(account)
        .budget_name(name)
        .send()
        .await
        .found()
        .with_context(|| format!("cannot delete budget {name} (Budgets DeleteBudget)"))?;
    Ok(deleted.is_some())
}

/// The notifications a budget has: (kind, percent), to check the alerts are in place.
pub async fn alerts(aws: &Aws, account: &str, name: &str) -> Result<Vec<(String, f64)>> {
    let out = aws
        .budgets()
        .describe_notifications_for_budget()
        .account_id(account)
        .budget_name(name)
        .send()
        .await
        .map_err(AwsError::from)
        .with_context(|| format!("cannot read the alerts of budget {name}"))?;
    Ok(out
        .notifications()
        .iter()
        .map(|n| (n.notification_type().as_str().to_string(), n.threshold()))
        .collect())
}
