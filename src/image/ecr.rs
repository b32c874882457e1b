//! The stage's ECR repository as this tool keeps it: whose it is (its `ummatics-sentiment:stack`
//! tag) and who may take it, made or taken idempotently with its lifecycle policy, and the
//! registry it is pushed to with the ECR login. The calls themselves are `crate::aws::ecr`'s.

use anyhow::{bail, Context, Result};

use crate::aws::ecr;
pub use crate::aws::ecr::{
    delete_repository, images, login, repository, ImageInfo, Login, Repository,
};
use crate::aws::Aws;

/// Rule 1 matches the images of the kept releases — each carries its release's slot tag,
/// `keep-0` … `keep-9` (`release::keep_tag`), so there are never more than 10 and none expires;
/// an image a rule matches is never considered by a lower-priority rule. Rule 2 keeps the 10
/// newest of the rest (images of deploys that did not become releases, or older than the kept
/// ones); older ones expire.
pub const LIFECYCLE_POLICY: &str = r#"{"rules":[{"rulePriority":1,"description":"never expire the images of the kept releases (keep-N tags)","selection":{"tagStatus":"tagged","tagPrefixList":["keep-"],"countType":"imageCountMoreThan","countNumber":10},"action":{"type":"expire"}},{"rulePriority":2,"description":"keep the 10 newest other images","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":10},"action":{"type":"expire"}}]}"#;

/// The tag that marks a repository as this tool's, for one stack (its value).
pub const TAG_STACK: &str = "ummatics-sentiment:stack";

/// Whose a repository is, by its `ummatics-sentiment:stack` tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// Made by this tool for this stack.
    This,
    /// Made by this tool for another stack (a name reused across accounts' stages?).
    Stack(String),
    /// Not made by this tool — or by a version from before the tag.
    Untagged,
}

/// Who may take an existing repository that is not tagged as this stack's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Nobody: a foreign repository is refused.
    None,
    /// The user said `--adopt`.
    Adopt,
    /// This tool's stack for the stage exists: an untagged repository is one an earlier
    /// version made (a repository tagged for another stack is still refused).
    EarlierVersion,
}

/// How the repository came to be this stack's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Created,
    Existed,
    /// Tagged now: adopted with `--adopt`, or made by an earlier version.
    Claimed,
}

/// The repository's owner, by its tags.
pub async fn owner(aws: &Aws, repository: &Repository, stack: &str) -> Result<Owner> {
    Ok(match ecr::tags(aws, repository).await?.remove(TAG_STACK) {
        Some(value) if value == stack => Owner::This,
        Some(other) => Owner::Stack(other),
        None => Owner::Untagged,
    })
}

/// Whether deploy may use an existing repository with this owner: `Ok(false)` when it is
/// already `stack`'s, `Ok(true)` when `claim` lets it be tagged as `stack`'s, else why not.
pub fn may_take(owner: Owner, claim: Claim, name: &str, stack: &str) -> Result<bool> {
    match owner {
        Owner::This => Ok(false),
        Owner::Untagged if claim != Claim::None => Ok(true),
        Owner::Stack(_) if claim == Claim::Adopt => Ok(true),
        Owner::Stack(other) => bail!(
            "ECR repository {name} belongs to stack {other} (its {TAG_STACK} tag), not to \
             {stack}: pass --adopt to make it {stack}'s, or deploy another --stage"
        ),
        Owner::Untagged => bail!(
            "ECR repository {name} exists and this tool did not make it (no {TAG_STACK} tag): \
             deploy would put its keep-10 lifecycle policy on it and destroy would delete it with \
             every image. Pass --adopt if it is this stage's to manage, or deploy another --stage"
        ),
    }
}

/// Makes the repository if needed (scan on push, tagged as `stack`'s), takes an existing one
/// only when it is `stack`'s (or `claim` allows), and sets the lifecycle policy. Two first
/// deploys at once both end up with the one repository: the loser of CreateRepository finds
/// it tagged as its own.
pub async fn ensure_repository(
    aws: &Aws,
    name: &str,
    stack: &str,
    claim: Claim,
) -> Result<(Repository, Origin)> {
    let existing = match repository(aws, name).await? {
        Some(r) => Some(r),
        None => match ecr::create_repository(aws, name, (TAG_STACK, stack)).await? {
            Some(created) => {
                ecr::set_lifecycle_policy(aws, name, LIFECYCLE_POLICY).await?;
                return Ok((created, Origin::Created));
            }
            // Another deploy made it between our look and our create.
            None => repository(aws, name).await?,
        },
    };
    let repository =
        existing.with_context(|| format!("ECR repository {name} vanished while deploying"))?;
    let origin = if may_take(owner(aws, &repository, stack).await?, claim, name, stack)? {
        ecr::tag(aws, &repository, (TAG_STACK, stack)).await?;
        Origin::Claimed
    } else {
        Origin::Existed
    };
    ecr::set_lifecycle_policy(aws, name, LIFECYCLE_POLICY).await?;
    Ok((repository, origin))
}

/// The registry the stage's images go to — `host` (`--registry`, stand-ins only) or else the
/// account's ECR endpoint — with the ECR login as its credential.
pub async fn registry(
    aws: &Aws,
    host: Option<&str>,
    insecure: bool,
) -> Result<crate::image::registry::Registry> {
    let login = login(aws).await?;
    crate::image::registry::Registry::new(
        host.unwrap_or(&login.endpoint),
        &login.username,
        &login.password,
        insecure,
    )
}
