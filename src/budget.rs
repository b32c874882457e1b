//! The stage's AWS Budgets cost budget: a monthly limit in US dollars over the services the
//! function's use is billed to, with e-mail at 80 % of the forecast and 100 % of actual spend.
//!
//! The budget is named after the stack and its region (budget names are per account). Budgets has no way to
//! read a notification's subscribers back on every endpoint, so the address a deploy set is
//! recorded in the stack's tags (`stack::TAG_BUDGET_*`) and compared there.

use std::fmt;

use anyhow::{anyhow, Context, Result};
use aws_sdk_budgets::types::{
    Budget, BudgetType, ComparisonOperator, Dimension, Expression, ExpressionDimensionValues,
    Notification, NotificationType, NotificationWithSubscribers, Spend, Subscriber,
    SubscriptionType, ThresholdType, TimeUnit,
};
use serde::{Deserialize, Serialize};

use crate::aws::{describe, error_code, Aws};

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

/// The most a budget may be set to here: a guard against a typo of a few zeros.
pub const MAX_USD: f64 = 1_000_000.0;

/// What a deploy asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetSpec {
    /// US cents per calendar month (money is counted in whole cents).
    pub limit_cents: u64,
    /// Who is e-mailed.
    pub email: String,
}

impl BudgetSpec {
    pub fn new(limit_usd: f64, email: String) -> BudgetSpec {
        BudgetSpec {
            limit_cents: (limit_usd * 100.0).round() as u64,
            email,
        }
    }

    /// The limit as Budgets stores it (a decimal string with two places).
    pub fn amount(&self) -> String {
        format!("{}.{:02}", self.limit_cents / 100, self.limit_cents % 100)
    }

    /// Whether a budget's limit is this one (to the cent).
    pub fn same_limit(&self, usd: f64) -> bool {
        (usd * 100.0).round() as u64 == self.limit_cents
    }
}

/// A dollar amount for `--budget`: `5`, `5.50`, `$5`; `0` means "no budget".
pub fn parse_usd(raw: &str) -> Result<f64, String> {
    let trimmed = raw.trim();
    let number = trimmed.strip_prefix('$').unwrap_or(trimmed).trim();
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{raw:?} is not an amount of US dollars; write e.g. 5 or 12.50"))?;
    if value < 0.0 {
        return Err(format!(
            "{raw:?} is negative: a budget is 0 or more US dollars a month (0 removes it)"
        ));
    }
    if !value.is_finite() {
        return Err(format!(
            "{raw:?} is not an amount of US dollars (0 or more)"
        ));
    }
    if value > MAX_USD {
        return Err(format!(
            "{raw:?} is more than {MAX_USD} USD a month: check the number of zeros"
        ));
    }
    if value > 0.0 && value < 0.01 {
        return Err(format!(
            "{raw:?} is less than a cent; Budgets counts in cents"
        ));
    }
    Ok(value)
}

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

/// What a deploy did to the budget.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BudgetAction {
    Created,
    /// The limit or address changed: the budget was changed in place (UpdateBudget; its
    /// alerts made again for a new address).
    Updated,
    Unchanged,
    /// Not asked for this time: the budget an earlier deploy made stays.
    Kept,
    Removed,
    /// A dry run: what would happen.
    WouldCreate,
    WouldUpdate,
    WouldRemove,
}

/// Before budget names carried the region, a stack's budget was named after the stack
/// alone. For a stack whose tags record a budget (`recorded`) but which has none under the
/// new name: when the old name exists, the budget is made again under the new name (same
/// limit and address) and the old one deleted; `true` when it moved.
pub async fn move_from_old_name(
    aws: &Aws,
    account: &str,
    stack: &str,
    recorded: &BudgetSpec,
) -> Result<bool> {
    let name = name_for(stack, &aws.region());
    if describe_budget(aws, account, stack).await?.is_none() {
        return Ok(false);
    }
    create_budget(aws, account, &name, recorded).await?;
    delete_budget(aws, account, stack).await?;
    Ok(true)
}

/// The budget's name for a stack in a region. Budget names are unique per account, not per
/// region (AWS Budgets API, `BudgetName`), so the region is part of it: the same stage in two
/// regions has two budgets, and destroying one leaves the other.
pub fn name_for(stack: &str, region: &str) -> String {
    format!("{stack}-{region}")
}

fn spend_usd(spend: Option<&Spend>) -> Option<f64> {
    spend.and_then(|s| s.amount().parse().ok())
}

/// The budget, if it exists.
pub async fn describe_budget(aws: &Aws, account: &str, name: &str) -> Result<Option<BudgetState>> {
    match aws
        .budgets()
        .describe_budget()
        .account_id(account)
        .budget_name(name)
        .send()
        .await
    {
        Ok(out) => {
            let Some(budget) = out.budget() else {
                return Ok(None);
            };
            let spent = budget.calculated_spend();
            Ok(Some(BudgetState {
                name: budget.budget_name().to_string(),
                limit_usd: spend_usd(budget.budget_limit()).unwrap_or_default(),
                actual_usd: spend_usd(spent.and_then(|s| s.actual_spend())),
                forecast_usd: spend_usd(spent.and_then(|s| s.forecasted_spend())),
            }))
        }
        Err(e) if error_code(&e) == Some("NotFoundException") => Ok(None),
        Err(e) => Err(anyhow!(describe(&e)))
            .with_context(|| format!("cannot read budget {name} (Budgets DescribeBudget)")),
    }
}

fn budget_of(name: &str, spec: &BudgetSpec) -> Result<Budget> {
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
                .amount(spec.amount())
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
pub async fn create_budget(aws: &Aws, account: &str, name: &str, spec: &BudgetSpec) -> Result<()> {
    let subscriber = subscriber_of(&spec.email)?;
    let mut request = aws
        .budgets()
        .create_budget()
        .account_id(account)
        .budget(budget_of(name, spec)?);
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
        .map_err(|e| anyhow!(describe(&e)))
        .with_context(|| format!("cannot create budget {name} (Budgets CreateBudget)"))?;
    Ok(())
}

/// Changes the budget in place (Budgets UpdateBudget keeps its alerts and history); when the
/// alerts' address changes, each alert is made again for the new one (`old_email`: what the
/// stack's tags recorded, `None` when unknown).
pub async fn update_budget(
    aws: &Aws,
    account: &str,
    name: &str,
    spec: &BudgetSpec,
    old_email: Option<&str>,
) -> Result<()> {
    aws.budgets()
        .update_budget()
        .account_id(account)
        .new_budget(budget_of(name, spec)?)
        .send()
        .await
        .map_err(|e| anyhow!(describe(&e)))
        .with_context(|| format!("cannot update budget {name} (Budgets UpdateBudget)"))?;
    if old_email == Some(spec.email.as_str()) {
        return Ok(());
    }
    let subscriber = subscriber_of(&spec.email)?;
    for (kind, percent) in ALERTS {
        let notification = notification_of(kind, percent)?;
        match aws
            .budgets()
            .delete_notification()
            .account_id(account)
            .budget_name(name)
            .notification(notification.clone())
            .send()
            .await
        {
            Ok(_) => {}
            Err(e) if error_code(&e) == Some("NotFoundException") => {}
            Err(e) => {
                return Err(anyhow!(describe(&e))).with_context(|| {
                    format!("cannot replace an alert of budget {name} (Budgets DeleteNotification)")
                })
            }
        }
        aws.budgets()
            .create_notification()
            .account_id(account)
            .budget_name(name)
            .notification(notification)
            .subscribers(subscriber.clone())
            .send()
            .await
            .map_err(|e| anyhow!(describe(&e)))
            .with_context(|| {
                format!("cannot set an alert of budget {name} (Budgets CreateNotification)")
            })?;
    }
    Ok(())
}

/// Deletes the budget; `false` when there was none.
pub async fn delete_budget(aws: &Aws, account: &str, name: &str) -> Result<bool> {
    match aws
        .budgets()
        .delete_budget()
        .account_id(account)
        .budget_name(name)
        .send()
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if error_code(&e) == Some("NotFoundException") => Ok(false),
        Err(e) => Err(anyhow!(describe(&e)))
            .with_context(|| format!("cannot delete budget {name} (Budgets DeleteBudget)")),
    }
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
        .map_err(|e| anyhow!(describe(&e)))
        .with_context(|| format!("cannot read the alerts of budget {name}"))?;
    Ok(out
        .notifications()
        .iter()
        .map(|n| (n.notification_type().as_str().to_string(), n.threshold()))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollar_amounts() {
        assert_eq!(parse_usd("5"), Ok(5.0));
        assert_eq!(parse_usd(" $12.50 "), Ok(12.5));
        assert_eq!(parse_usd("0"), Ok(0.0));
        for bad in ["", "five", "-1", "NaN", "inf", "0.001", "2000000", "$"] {
            assert!(parse_usd(bad).is_err(), "{bad:?} was accepted");
        }
        let spec = BudgetSpec::new(12.5, "ops@example.com".into());
        assert_eq!(spec.amount(), "12.50");
        assert!(spec.same_limit(12.499_999));
        assert_eq!(BudgetSpec::new(0.07, String::new()).amount(), "0.07");
    }
}
