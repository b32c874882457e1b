//! The ECR repository (idempotent create, scan on push, lifecycle policy) and the login token.

use anyhow::{anyhow, bail, Context, Result};
use aws_sdk_ecr::types::{ImageDetail, ImageScanningConfiguration, Tag};
use base64::Engine;
use serde::Serialize;

use crate::aws::{describe, error_code, Aws};

/// Rule 1 matches the images of the kept releases — each carries its release's slot tag,
/// `keep-0` … `keep-9` (`release::keep_tag`), so there are never more than 10 and none expires;
/// an image a rule matches is never considered by a lower-priority rule. Rule 2 keeps the 10
/// newest of the rest (images of deploys that did not become releases, or older than the kept
/// ones); older ones expire.
pub const LIFECYCLE_POLICY: &str = r#"{"rules":[{"rulePriority":1,"description":"never expire the images of the kept releases (keep-N tags)","selection":{"tagStatus":"tagged","tagPrefixList":["keep-"],"countType":"imageCountMoreThan","countNumber":10},"action":{"type":"expire"}},{"rulePriority":2,"description":"keep the 10 newest other images","selection":{"tagStatus":"any","countType":"imageCountMoreThan","countNumber":10},"action":{"type":"expire"}}]}"#;

/// An ECR repository.
#[derive(Debug, Clone, Serialize)]
pub struct Repository {
    pub name: String,
    pub uri: String,
    pub arn: String,
}

/// What `docker login` would take: user `AWS`, the token's password, and the registry.
#[derive(Clone)]
pub struct Login {
    pub username: String,
    pub password: String,
    /// `https://ACCOUNT.dkr.ecr.REGION.amazonaws.com`
    pub endpoint: String,
}

/// The repository, if it exists.
pub async fn repository(aws: &Aws, name: &str) -> Result<Option<Repository>> {
    match aws
        .ecr()
        .describe_repositories()
        .repository_names(name)
        .send()
        .await
    {
        Ok(out) => Ok(out.repositories().first().map(|r| Repository {
            name: r.repository_name().unwrap_or(name).to_string(),
            uri: r.repository_uri().unwrap_or_default().to_string(),
            arn: r.repository_arn().unwrap_or_default().to_string(),
        })),
        Err(e) if error_code(&e) == Some("RepositoryNotFoundException") => Ok(None),
        Err(e) => Err(anyhow!(describe(&e)))
            .with_context(|| format!("cannot look up ECR repository {name}")),
    }
}

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
    let out = aws
        .ecr()
        .list_tags_for_resource()
        .resource_arn(&repository.arn)
        .send()
        .await
        .map_err(|e| anyhow!(describe(&e)))
        .with_context(|| format!("cannot read the tags of ECR repository {}", repository.name))?;
    Ok(
        match out
            .tags()
            .iter()
            .find(|t| t.key() == TAG_STACK)
            .map(|t| t.value())
        {
            Some(value) if value == stack => Owner::This,
            Some(other) => Owner::Stack(other.to_string()),
            None => Owner::Untagged,
        },
    )
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

fn owner_tag(stack: &str) -> Result<Tag> {
    Tag::builder()
        .key(TAG_STACK)
        .value(stack)
        .build()
        .context("cannot build an ECR tag")
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
        None => {
            let created = aws
                .ecr()
                .create_repository()
                .repository_name(name)
                .image_scanning_configuration(
                    ImageScanningConfiguration::builder()
                        .scan_on_push(true)
                        .build(),
                )
                .tags(owner_tag(stack)?)
                .send()
                .await;
            match created {
                Ok(out) => {
                    let r = out
                        .repository()
                        .context("CreateRepository returned no repository")?;
                    set_lifecycle_policy(aws, name).await?;
                    return Ok((
                        Repository {
                            name: name.to_string(),
                            uri: r.repository_uri().unwrap_or_default().to_string(),
                            arn: r.repository_arn().unwrap_or_default().to_string(),
                        },
                        Origin::Created,
                    ));
                }
                // Another deploy made it between our look and our create.
                Err(e) if error_code(&e) == Some("RepositoryAlreadyExistsException") => {
                    repository(aws, name).await?
                }
                Err(e) => {
                    return Err(anyhow!(describe(&e)))
                        .with_context(|| format!("cannot create ECR repository {name}"))
                }
            }
        }
    };
    let repository =
        existing.with_context(|| format!("ECR repository {name} vanished while deploying"))?;
    let origin = if may_take(owner(aws, &repository, stack).await?, claim, name, stack)? {
        tag(aws, &repository, stack).await?;
        Origin::Claimed
    } else {
        Origin::Existed
    };
    set_lifecycle_policy(aws, name).await?;
    Ok((repository, origin))
}

async fn tag(aws: &Aws, repository: &Repository, stack: &str) -> Result<()> {
    aws.ecr()
        .tag_resource()
        .resource_arn(&repository.arn)
        .tags(owner_tag(stack)?)
        .send()
        .await
        .map_err(|e| anyhow!(describe(&e)))
        .with_context(|| format!("cannot tag ECR repository {}", repository.name))?;
    Ok(())
}

async fn set_lifecycle_policy(aws: &Aws, name: &str) -> Result<()> {
    aws.ecr()
        .put_lifecycle_policy()
        .repository_name(name)
        .lifecycle_policy_text(LIFECYCLE_POLICY)
        .send()
        .await
        .map_err(|e| anyhow!(describe(&e)))
        .with_context(|| format!("cannot set the lifecycle policy of ECR repository {name}"))?;
    Ok(())
}

/// Deletes the repository and its images; `None` when there was none.
pub async fn delete_repository(aws: &Aws, name: &str) -> Result<Option<usize>> {
    let Some(images) = image_details(aws, name).await? else {
        return Ok(None);
    };
    let images = images.len();
    match aws
        .ecr()
        .delete_repository()
        .repository_name(name)
        .force(true)
        .send()
        .await
    {
        Ok(_) => Ok(Some(images)),
        Err(e) if error_code(&e) == Some("RepositoryNotFoundException") => Ok(None),
        Err(e) => Err(anyhow!(describe(&e)))
            .with_context(|| format!("cannot delete ECR repository {name}")),
    }
}

/// Every image of the repository, all pages read (`DescribeImages` answers at most 100 per
/// page; moto answers all at once); `None` when the repository does not exist.
async fn image_details(aws: &Aws, name: &str) -> Result<Option<Vec<ImageDetail>>> {
    let mut details = Vec::new();
    let mut pages = aws
        .ecr()
        .describe_images()
        .repository_name(name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        match page {
            Ok(page) => details.extend_from_slice(page.image_details()),
            Err(e) if error_code(&e) == Some("RepositoryNotFoundException") => return Ok(None),
            Err(e) => {
                return Err(anyhow!(describe(&e)))
                    .with_context(|| format!("cannot list the images of ECR repository {name}"))
            }
        }
    }
    Ok(Some(details))
}

/// The repository's images: (tags, digest, pushed at, size).
pub async fn images(aws: &Aws, name: &str) -> Result<Vec<ImageInfo>> {
    let Some(details) = image_details(aws, name).await? else {
        return Ok(Vec::new());
    };
    let mut images: Vec<ImageInfo> = details
        .iter()
        .map(|d| ImageInfo {
            digest: d.image_digest().unwrap_or_default().to_string(),
            tags: d.image_tags().to_vec(),
            pushed_at: d.image_pushed_at().map(|t| t.to_string()),
            bytes: d.image_size_in_bytes().map(|n| n as u64),
        })
        .collect();
    images.sort_by(|a, b| b.pushed_at.cmp(&a.pushed_at));
    Ok(images)
}

/// One image in the repository.
#[derive(Debug, Clone, Serialize)]
pub struct ImageInfo {
    pub digest: String,
    pub tags: Vec<String>,
    pub pushed_at: Option<String>,
    pub bytes: Option<u64>,
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

/// GetAuthorizationToken, decoded into user and password.
pub async fn login(aws: &Aws) -> Result<Login> {
    let out = aws
        .ecr()
        .get_authorization_token()
        .send()
        .await
        .map_err(|e| anyhow!(describe(&e)))
        .context("cannot get an ECR login token (GetAuthorizationToken)")?;
    let data = out
        .authorization_data()
        .first()
        .context("GetAuthorizationToken returned no authorization data")?;
    let token = data
        .authorization_token()
        .context("GetAuthorizationToken returned no token")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(token)
        .context("the ECR token is not base64")?;
    let decoded = String::from_utf8(decoded).context("the ECR token is not text")?;
    let (username, password) = decoded
        .split_once(':')
        .context("the ECR token is not USER:PASSWORD")?;
    Ok(Login {
        username: username.to_string(),
        password: password.to_string(),
        endpoint: data.proxy_endpoint().unwrap_or_default().to_string(),
    })
}
