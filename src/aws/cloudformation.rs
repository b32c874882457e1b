//! AWS CloudFormation calls: stacks (describe, delete), their resources and events, and change
//! sets (create, read until computed, execute, list, delete). What a deploy plans, applies and
//! shows is `crate::stack`'s.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use aws_sdk_cloudformation::types::{
    Capability, ChangeSetStatus, ChangeSetSummary, ChangeSetType, ExecutionStatus, Parameter,
    ResourceChange as SdkResourceChange, Tag,
};
use serde::Serialize;

use super::{Aws, AwsError, Found};

/// CloudFormation's stack status: the SDK's enum (a status newer than the SDK arrives as its
/// `Unknown` variant and prints as CloudFormation sent it).
pub use aws_sdk_cloudformation::types::StackStatus;

/// A stack as CloudFormation describes it.
#[derive(Debug, Clone, Serialize)]
pub struct StackState {
    pub name: String,
    pub id: String,
    #[serde(serialize_with = "status_text")]
    pub status: StackStatus,
    pub status_reason: Option<String>,
    pub created: Option<String>,
    pub last_updated: Option<String>,
    pub parameters: BTreeMap<String, String>,
    pub outputs: BTreeMap<String, String>,
    pub tags: BTreeMap<String, String>,
}

/// A status in `--output json` as CloudFormation spells it.
fn status_text<S: serde::Serializer>(status: &StackStatus, to: S) -> Result<S::Ok, S::Error> {
    to.serialize_str(status.as_str())
}

impl StackState {
    /// A create that failed and rolled back: the stack cannot be updated, only deleted.
    pub fn is_failed_create(&self) -> bool {
        matches!(
            self.status,
            StackStatus::RollbackComplete | StackStatus::RollbackFailed | StackStatus::CreateFailed
        )
    }

    /// CloudFormation is working on it.
    pub fn is_busy(&self) -> bool {
        use StackStatus::*;
        match &self.status {
            ReviewInProgress => false,
            CreateInProgress
            | DeleteInProgress
            | ImportInProgress
            | ImportRollbackInProgress
            | RollbackInProgress
            | UpdateCompleteCleanupInProgress
            | UpdateInProgress
            | UpdateRollbackCompleteCleanupInProgress
            | UpdateRollbackInProgress => true,
            // Settled statuses, and any newer than the SDK, by CloudFormation's naming.
            other => other.as_str().ends_with("_IN_PROGRESS"),
        }
    }

    /// Made only to hold a first create's change set: there is no stack behind it yet.
    pub fn is_review(&self) -> bool {
        self.status == StackStatus::ReviewInProgress
    }
}

/// One resource change a change set would make.
#[derive(Debug, Clone, Serialize)]
pub struct ResourceChange {
    pub action: String,
    pub logical_id: String,
    pub resource_type: String,
    pub replacement: Option<String>,
}

impl ResourceChange {
    fn from_sdk(r: &SdkResourceChange) -> ResourceChange {
        ResourceChange {
            action: r
                .action()
                .map(|a| a.as_str().to_string())
                .unwrap_or_default(),
            logical_id: r.logical_resource_id().unwrap_or_default().to_string(),
            resource_type: r.resource_type().unwrap_or_default().to_string(),
            replacement: r.replacement().map(|x| x.as_str().to_string()),
        }
    }
}

/// A change set on the stack as ListChangeSets gives it: enough to tell which of two first
/// deploys racing for one stack name goes on.
#[derive(Debug)]
pub struct ChangeSetEntry {
    pub name: String,
    pub stack_id: String,
    /// Milliseconds since the epoch, as CloudFormation stamped it.
    pub created: i64,
    /// CloudFormation executes (or has executed) it.
    pub executed: bool,
    /// Made, or being made, and not yet executed: it may still be.
    pub waiting: bool,
}

impl ChangeSetEntry {
    fn from_summary(c: &ChangeSetSummary) -> ChangeSetEntry {
        ChangeSetEntry {
            name: c.change_set_name().unwrap_or_default().to_string(),
            stack_id: c.stack_id().unwrap_or_default().to_string(),
            created: c
                .creation_time()
                .map_or(i64::MAX, |t| t.to_millis().unwrap_or(i64::MAX)),
            executed: matches!(
                c.execution_status(),
                Some(
                    ExecutionStatus::ExecuteInProgress
                        | ExecutionStatus::ExecuteComplete
                        | ExecutionStatus::ExecuteFailed
                )
            ),
            waiting: matches!(
                c.status(),
                Some(
                    ChangeSetStatus::CreatePending
                        | ChangeSetStatus::CreateInProgress
                        | ChangeSetStatus::CreateComplete
                )
            ) && matches!(
                c.execution_status(),
                None | Some(ExecutionStatus::Available | ExecutionStatus::Unavailable)
            ),
        }
    }
}

/// One stack event, as DescribeStackEvents gives it.
#[derive(Debug, Clone)]
pub struct StackEvent {
    pub id: String,
    pub logical_id: String,
    pub resource_type: String,
    /// `CREATE_FAILED`, `UPDATE_COMPLETE`, … as CloudFormation spells it.
    pub status: String,
    /// CloudFormation's reason (empty when it gave none).
    pub reason: String,
}

/// Which kind of change set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeSetKind {
    /// Creates the stack (first made as REVIEW_IN_PROGRESS to hold the change set).
    Create,
    Update,
}

/// A change set to make.
#[derive(Debug, Clone, Copy)]
pub struct NewChangeSet<'a> {
    pub stack: &'a str,
    pub name: &'a str,
    pub kind: ChangeSetKind,
    pub template: &'a str,
    pub parameters: &'a BTreeMap<String, String>,
    /// The stack's tags, whole: CloudFormation replaces a stack's tags with the given set.
    pub tags: &'a BTreeMap<String, String>,
}

/// A change set as DescribeChangeSet gives it.
#[derive(Debug)]
pub enum ChangeSet {
    /// Still being computed.
    Pending,
    /// Ready to execute: the resource changes it would make.
    Ready(Vec<ResourceChange>),
    /// Refused because there is nothing to change.
    NoChanges,
    /// Refused, with CloudFormation's reason.
    Failed(String),
}

/// CreateChangeSet (with `CAPABILITY_IAM`); the id of the stack it belongs to. The error is
/// typed so that a caller can tell a name taken ([`super::ErrorKind::AlreadyExists`]).
pub async fn create_change_set(
    aws: &Aws,
    request: NewChangeSet<'_>,
) -> Result<Option<String>, AwsError> {
    let out = aws
        .cloudformation()
        .create_change_set()
        .stack_name(request.stack)
        .change_set_name(request.name)
        .change_set_type(match request.kind {
            ChangeSetKind::Update => ChangeSetType::Update,
            ChangeSetKind::Create => ChangeSetType::Create,
        })
        .template_body(request.template)
        .set_parameters(Some(
            request
                .parameters
                .iter()
                .map(|(k, v)| {
                    Parameter::builder()
                        .parameter_key(k)
                        .parameter_value(v)
                        .build()
                })
                .collect(),
        ))
        .set_tags(Some(
            request
                .tags
                .iter()
                .map(|(k, v)| Tag::builder().key(k).value(v).build())
                .collect(),
        ))
        .capabilities(Capability::CapabilityIam)
        .description("ummatics-sentiment deploy")
        .send()
        .await?;
    Ok(out.stack_id().map(str::to_string))
}

/// DescribeChangeSet.
pub async fn change_set(aws: &Aws, stack: &str, name: &str) -> Result<ChangeSet> {
    let out = aws
        .cloudformation()
        .describe_change_set()
        .stack_name(stack)
        .change_set_name(name)
        .send()
        .await
        .map_err(AwsError::from)
        .context("cannot read the change set")?;
    Ok(match out.status() {
        Some(ChangeSetStatus::CreateComplete) => ChangeSet::Ready(
            out.changes()
                .iter()
                .filter_map(|c| c.resource_change())
                .map(ResourceChange::from_sdk)
                .collect(),
        ),
        Some(ChangeSetStatus::Failed) => {
            let reason = out.status_reason().unwrap_or_default().to_string();
            // Real AWS says "The submitted information didn't contain changes…" (older: "No
            // updates are to be performed."): its only way to say there is nothing to do.
            if reason.contains("didn't contain changes") || reason.contains("No updates") {
                ChangeSet::NoChanges
            } else {
                ChangeSet::Failed(reason)
            }
        }
        _ => ChangeSet::Pending,
    })
}

/// GetTemplate: the template body the stack runs, as it was sent.
pub async fn template(aws: &Aws, stack: &str) -> Result<String> {
    let out = aws
        .cloudformation()
        .get_template()
        .stack_name(stack)
        .send()
        .await
        .map_err(AwsError::from)
        .with_context(|| format!("cannot read the template of stack {stack}"))?;
    Ok(out.template_body().unwrap_or_default().to_string())
}

/// DeleteChangeSet (typed: a change set already gone is [`AwsError::is_not_found`]).
pub async fn delete_change_set(aws: &Aws, stack: &str, name: &str) -> Result<(), AwsError> {
    aws.cloudformation()
        .delete_change_set()
        .stack_name(stack)
        .change_set_name(name)
        .send()
        .await?;
    Ok(())
}

/// ExecuteChangeSet (typed: another run's change is a [`super::ErrorKind::Conflict`]).
pub async fn execute_change_set(aws: &Aws, stack: &str, name: &str) -> Result<(), AwsError> {
    aws.cloudformation()
        .execute_change_set()
        .stack_name(stack)
        .change_set_name(name)
        .send()
        .await?;
    Ok(())
}

/// ListChangeSets, every page, of the stacks named `stack` (a stand-in may list other
/// stacks' change sets too).
pub async fn change_sets(aws: &Aws, stack: &str) -> Result<Vec<ChangeSetEntry>> {
    let mut entries = Vec::new();
    let mut pages = aws
        .cloudformation()
        .list_change_sets()
        .stack_name(stack)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page
            .map_err(AwsError::from)
            .with_context(|| format!("cannot list the change sets of stack {stack}"))?;
        entries.extend(
            page.summaries()
                .iter()
                .filter(|c| c.stack_name() == Some(stack))
                .map(ChangeSetEntry::from_summary),
        );
    }
    Ok(entries)
}

/// DescribeStackEvents, newest first; none when the stack does not exist.
pub async fn events(aws: &Aws, stack: &str) -> Result<Vec<StackEvent>> {
    let out = aws
        .cloudformation()
        .describe_stack_events()
        .stack_name(stack)
        .send()
        .await
        .found()
        .context("cannot read stack events")?;
    let events = out
        .as_ref()
        .map(|out| out.stack_events())
        .unwrap_or_default();
    Ok(events
        .iter()
        .filter_map(|e| {
            Some(StackEvent {
                id: e.event_id()?.to_string(),
                logical_id: e.logical_resource_id().unwrap_or_default().to_string(),
                resource_type: e.resource_type().unwrap_or_default().to_string(),
                status: e
                    .resource_status()
                    .map(|s| s.as_str().to_string())
                    .unwrap_or_default(),
                reason: e.resource_status_reason().unwrap_or_default().to_string(),
            })
        })
        .collect())
}

/// DeleteStack for a name or id (it returns at once; the stack goes on being deleted).
pub async fn delete_stack(aws: &Aws, id: &str) -> Result<()> {
    aws.cloudformation()
        .delete_stack()
        .stack_name(id)
        .send()
        .await
        .map_err(AwsError::from)?;
    Ok(())
}

/// DescribeStackResources: the physical id of the stack's first resource of `resource_type`
/// that has one.
pub async fn resource_id(aws: &Aws, stack: &str, resource_type: &str) -> Result<Option<String>> {
    let out = aws
        .cloudformation()
        .describe_stack_resources()
        .stack_name(stack)
        .send()
        .await
        .map_err(AwsError::from)
        .with_context(|| format!("cannot list the resources of stack {stack}"))?;
    Ok(out
        .stack_resources()
        .iter()
        .filter(|r| r.resource_type() == Some(resource_type))
        .filter_map(|r| r.physical_resource_id())
        .find(|id| !id.is_empty())
        .map(str::to_string))
}

/// DescribeStacks for one name or id; `None` when it does not exist or was deleted.
pub async fn describe_stack(aws: &Aws, name: &str) -> Result<Option<StackState>> {
    let out = aws
        .cloudformation()
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
        .found()
        .with_context(|| format!("cannot describe stack {name}"))?;
    let Some(out) = out else {
        return Ok(None);
    };
    let Some(stack) = out.stacks().first() else {
        return Ok(None);
    };
    let status = stack
        .stack_status()
        .cloned()
        .context("CloudFormation described a stack without its status")?;
    if status == StackStatus::DeleteComplete {
        return Ok(None);
    }
    Ok(Some(StackState {
        name: stack.stack_name().unwrap_or(name).to_string(),
        id: stack.stack_id().unwrap_or(name).to_string(),
        status,
        status_reason: stack.stack_status_reason().map(str::to_string),
        created: stack.creation_time().map(|t| t.to_string()),
        last_updated: stack.last_updated_time().map(|t| t.to_string()),
        parameters: stack
            .parameters()
            .iter()
            .filter_map(|p| {
                Some((
                    p.parameter_key()?.to_string(),
                    p.parameter_value()?.to_string(),
                ))
            })
            .collect(),
        outputs: stack
            .outputs()
            .iter()
            .filter_map(|o| Some((o.output_key()?.to_string(), o.output_value()?.to_string())))
            .collect(),
        tags: stack
            .tags()
            .iter()
            .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
            .collect(),
    }))
}
