//! Amazon ECR calls: repositories (look up, create with scan on push, tag, lifecycle policy,
//! delete), their images, and the login token. Which repository a stage may take, and when,
//! is `crate::image::ecr`'s.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use aws_sdk_ecr::types::{ImageScanningConfiguration, Tag};
use base64::Engine;
use serde::Serialize;

use super::{Aws, AwsError, ErrorKind, Found};

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

/// One image in a repository.
#[derive(Debug, Clone, Serialize)]
pub struct ImageInfo {
    pub digest: String,
    pub tags: Vec<String>,
    pub pushed_at: Option<String>,
    pub bytes: Option<u64>,
}

/// DescribeRepositories for one name: the repository, if it exists.
pub async fn repository(aws: &Aws, name: &str) -> Result<Option<Repository>> {
    let out = aws
        .ecr()
        .describe_repositories()
        .repository_names(name)
        .send()
        .await
        .found()
        .with_context(|| format!("cannot look up ECR repository {name}"))?;
    let found = out.as_ref().and_then(|out| out.repositories().first());
    Ok(found.map(|r| Repository {
        name: r.repository_name().unwrap_or(name).to_string(),
        uri: r.repository_uri().unwrap_or_default().to_string(),
        arn: r.repository_arn().unwrap_or_default().to_string(),
    }))
}

/// The repository's tags.
pub async fn tags(aws: &Aws, repository: &Repository) -> Result<BTreeMap<String, String>> {
    let out = aws
        .ecr()
        .list_tags_for_resource()
        .resource_arn(&repository.arn)
        .send()
        .await
        .map_err(AwsError::from)
        .with_context(|| format!("cannot read the tags of ECR repository {}", repository.name))?;
    Ok(out
        .tags()
        .iter()
        .map(|t| (t.key().to_string(), t.value().to_string()))
        .collect())
}

fn tag_of(key: &str, value: &str) -> Result<Tag> {
    Tag::builder()
        .key(key)
        .value(value)
        .build()
        .context("cannot build an ECR tag")
}

/// CreateRepository with scan on push and one tag. `Ok(None)` when a repository of the name
/// exists already (made by another run between a look and this create).
pub async fn create_repository(
    aws: &Aws,
    name: &str,
    tag: (&str, &str),
) -> Result<Option<Repository>> {
    let created = aws
        .ecr()
        .create_repository()
        .repository_name(name)
        .image_scanning_configuration(
            ImageScanningConfiguration::builder()
                .scan_on_push(true)
                .build(),
        )
        .tags(tag_of(tag.0, tag.1)?)
        .send()
        .await
        .map_err(AwsError::from);
    match created {
        Ok(out) => {
            let r = out
                .repository()
                .context("CreateRepository returned no repository")?;
            Ok(Some(Repository {
                name: name.to_string(),
                uri: r.repository_uri().unwrap_or_default().to_string(),
                arn: r.repository_arn().unwrap_or_default().to_string(),
            }))
        }
        Err(e) if e.kind == ErrorKind::AlreadyExists => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot create ECR repository {name}")),
    }
}

/// TagResource: one tag on the repository.
pub async fn tag(aws: &Aws, repository: &Repository, tag: (&str, &str)) -> Result<()> {
    aws.ecr()
        .tag_resource()
        .resource_arn(&repository.arn)
        .tags(tag_of(tag.0, tag.1)?)
        .send()
        .await
        .map_err(AwsError::from)
        .with_context(|| format!("cannot tag ECR repository {}", repository.name))?;
    Ok(())
}

/// PutLifecyclePolicy.
pub async fn set_lifecycle_policy(aws: &Aws, name: &str, policy: &str) -> Result<()> {
    aws.ecr()
        .put_lifecycle_policy()
        .repository_name(name)
        .lifecycle_policy_text(policy)
        .send()
        .await
        .map_err(AwsError::from)
        .with_context(|| format!("cannot set the lifecycle policy of ECR repository {name}"))?;
    Ok(())
}

/// Deletes the repository and its images; `None` when there was none, else how many images
/// went with it.
pub async fn delete_repository(aws: &Aws, name: &str) -> Result<Option<usize>> {
    let Some(images) = images(aws, name).await? else {
        return Ok(None);
    };
    let deleted = aws
        .ecr()
        .delete_repository()
        .repository_name(name)
        .force(true)
        .send()
        .await
        .found()
        .with_context(|| format!("cannot delete ECR repository {name}"))?;
    Ok(deleted.map(|_| images.len()))
}

/// Every image of the repository, newest first, all pages read (`DescribeImages` answers at
/// most 100 per page; moto answers all at once); `None` when the repository does not exist.
pub async fn images(aws: &Aws, name: &str) -> Result<Option<Vec<ImageInfo>>> {
    let mut images = Vec::new();
    let mut pages = aws
        .ecr()
        .describe_images()
        .repository_name(name)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let Some(page) = page
            .found()
            .with_context(|| format!("cannot list the images of ECR repository {name}"))?
        else {
            return Ok(None);
        };
        images.extend(page.image_details().iter().map(|d| ImageInfo {
            digest: d.image_digest().unwrap_or_default().to_string(),
            tags: d.image_tags().to_vec(),
            pushed_at: d.image_pushed_at().map(|t| t.to_string()),
            bytes: d.image_size_in_bytes().map(|n| n as u64),
        }));
    }
    images.sort_by(|a, b| b.pushed_at.cmp(&a.pushed_at));
    Ok(Some(images))
}

/// GetAuthorizationToken, decoded into user and password.
pub async fn login(aws: &Aws) -> Result<Login> {
    let out = aws
        .ecr()
        .get_authorization_token()
        .send()
        .await
        .map_err(AwsError::from)
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
