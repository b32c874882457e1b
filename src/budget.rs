//! The stage's AWS Budgets cost budget: a monthly limit in US dollars over the services the
//! function's use is billed to, with e-mail at 80 % of the forecast and 100 % of actual spend.
//!
//! The budget is named after the stack and its region (budget names are per account). Budgets has no way to
//! read a notification's subscribers back on every endpoint, so the address a deploy set is
//! recorded in the stack's tags (`stack::TAG_BUDGET_*`) and compared there.

use std::fmt;

use anyhow::Result;
use serde::{Deserialize, Serialize};

pub use crate::aws::budgets::BudgetState;
use crate::aws::budgets::{self, Limit};
use crate::aws::Aws;

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

    /// The limit and address as Budgets takes them.
    pub fn limit(&self) -> Limit<'_> {
        Limit {
            amount: self.amount(),
            email: &self.email,
        }
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
    if budgets::describe(aws, account, stack).await?.is_none() {
        return Ok(false);
    }
    budgets::create(aws, account, &name, &recorded.limit()).await?;
    budgets::delete(aws, account, stack).await?;
    Ok(true)
}

/// The budget's name for a stack in a region. Budget names are unique per account, not per
/// region (AWS Budgets API, `BudgetName`), so the region is part of it: the same stage in two
/// regions has two budgets, and destroying one leaves the other.
pub fn name_for(stack: &str, region: &str) -> String {
    format!("{stack}-{region}")
}

/// What deploy does with the stage's budget.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BudgetChoice {
    /// Not asked for: a budget an earlier deploy made stays as it is.
    Keep,
    /// `--budget 0`.
    Remove,
    Set(BudgetSpec),
}

/// What happened to the budget, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct BudgetReport {
    pub name: String,
    pub action: BudgetAction,
    /// The limit and address (`None` once removed, or kept without a record of them).
    pub spec: Option<BudgetSpec>,
    /// What Budgets says now: limit, spend this month (none in a dry run or once removed).
    pub state: Option<BudgetState>,
}

impl fmt::Display for BudgetReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let action = match self.action {
            BudgetAction::Created => "created",
            BudgetAction::Updated => "updated",
            BudgetAction::Unchanged => "unchanged",
            BudgetAction::Kept => "kept from an earlier deploy; --budget 0 removes it",
            BudgetAction::Removed => "removed",
            BudgetAction::WouldCreate => "would be created",
            BudgetAction::WouldUpdate => "would be updated",
            BudgetAction::WouldRemove => "would be removed",
        };
        match (&self.spec, &self.state) {
            (Some(spec), _) => write!(
                f,
                "${}/month, alerts to {} ({action})",
                spec.amount(),
                spec.email
            )?,
            (None, Some(state)) => write!(f, "${:.2}/month ({action})", state.limit_usd)?,
            (None, None) => write!(f, "{} ({action})", self.name)?,
        }
        if let Some(spent) = self.state.as_ref().and_then(|s| s.actual_usd) {
            write!(f, "; ${spent:.2} spent this month")?;
        }
        Ok(())
    }
}

/// What [`reconcile`] did: the report (`None` when there is no budget and none was asked
/// for), and what to tell the user on the way.
#[derive(Debug)]
pub struct Reconciled {
    pub report: Option<BudgetReport>,
    pub notes: Vec<String>,
}

/// The stage's budget brought to what `choice` asks: made, changed in place, kept or removed
/// (or, with `dry_run`, what would be). `recorded` is what the stack's tags said before this
/// deploy: the alert address cannot be read back from Budgets, so an unchanged budget is one
/// whose limit matches and whose recorded address is the one asked for.
pub async fn reconcile(
    aws: &Aws,
    account: &str,
    choice: &BudgetChoice,
    recorded: Option<&BudgetSpec>,
    dry_run: bool,
) -> Result<Reconciled> {
    let name = name_for(&aws.names.stack, &aws.region());
    let mut notes = Vec::new();
    let mut existing = budgets::describe(aws, account, &name).await?;
    // None under this name, though the tags record one: an earlier version's, under the old name.
    if let (None, Some(recorded), false) = (&existing, recorded, dry_run) {
        match move_from_old_name(aws, account, &aws.names.stack, recorded).await {
            Ok(true) => {
                notes.push(format!(
                    "budget {} (its name before names carried the region) is now {name}",
                    aws.names.stack
                ));
                existing = budgets::describe(aws, account, &name).await?;
            }
            Ok(false) => {}
            Err(e) => notes.push(format!("warning: {e:#}")),
        }
    }
    let Some((action, spec)) = decide(choice, recorded, existing.as_ref(), dry_run) else {
        return Ok(Reconciled {
            report: None,
            notes,
        });
    };
    match (action, &spec) {
        (BudgetAction::Removed, _) => {
            budgets::delete(aws, account, &name).await?;
        }
        (BudgetAction::Updated, Some(spec)) => {
            let old_email = recorded.map(|r| r.email.as_str());
            budgets::update(aws, account, &name, &spec.limit(), old_email).await?;
        }
        (BudgetAction::Created, Some(spec)) => {
            budgets::create(aws, account, &name, &spec.limit()).await?;
        }
        _ => {}
    }
    let state = match action {
        BudgetAction::Removed | BudgetAction::WouldCreate => None,
        BudgetAction::Created | BudgetAction::Updated => {
            budgets::describe(aws, account, &name).await?
        }
        _ => existing,
    };
    Ok(Reconciled {
        report: Some(BudgetReport {
            name,
            action,
            spec,
            state,
        }),
        notes,
    })
}

/// What to do, from what is asked, recorded and there: `None` when there is no budget and
/// none is asked for.
pub fn decide(
    choice: &BudgetChoice,
    recorded: Option<&BudgetSpec>,
    existing: Option<&BudgetState>,
    dry_run: bool,
) -> Option<(BudgetAction, Option<BudgetSpec>)> {
    Some(match (choice, existing) {
        (BudgetChoice::Keep | BudgetChoice::Remove, None) => return None,
        (BudgetChoice::Keep, Some(_)) => (BudgetAction::Kept, recorded.cloned()),
        (BudgetChoice::Remove, Some(_)) if dry_run => (BudgetAction::WouldRemove, None),
        (BudgetChoice::Remove, Some(_)) => (BudgetAction::Removed, None),
        (BudgetChoice::Set(spec), existing) => {
            let same =
                existing.is_some_and(|b| spec.same_limit(b.limit_usd)) && recorded == Some(spec);
            let action = match (same, existing.is_some(), dry_run) {
                (true, _, _) => BudgetAction::Unchanged,
                (false, true, true) => BudgetAction::WouldUpdate,
                (false, false, true) => BudgetAction::WouldCreate,
                (false, true, false) => BudgetAction::Updated,
                (false, false, false) => BudgetAction::Created,
            };
            (action, Some(spec.clone()))
        }
    })
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
