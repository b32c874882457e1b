//! `info`: the deployed stack, function, URL, repository and images.

use std::fmt;
use std::process::ExitCode;

use anyhow::{anyhow, Context, Result};
use serde::Serialize;

use crate::aws::{describe, error_code, Aws};
use crate::cli::GlobalArgs;
use crate::commands::deploy::function_url;
use crate::image::ecr::{self, ImageInfo, Repository};
use crate::output::{emit, human_bytes};
use crate::stack::{describe_stack, StackState};

#[derive(Debug, Clone, Serialize)]
pub struct FunctionInfo {
    pub name: String,
    pub arn: String,
    pub memory_mb: i32,
    pub timeout_s: i32,
    pub architecture: String,
    pub image_uri: Option<String>,
    pub image_digest: Option<String>,
    pub last_modified: Option<String>,
    pub state: Option<String>,
    pub url: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct InfoReport {
    pub region: String,
    pub stack_name: String,
    pub stack: Option<StackState>,
    pub function: Option<FunctionInfo>,
    pub repository: Option<Repository>,
    pub images: Vec<ImageInfo>,
}

impl fmt::Display for InfoReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.stack {
            Some(s) => writeln!(
                f,
                "stack       {} {} (updated {})",
                s.name,
                s.status,
                s.last_updated
                    .as_deref()
                    .or(s.created.as_deref())
                    .unwrap_or("-")
            )?,
            None => writeln!(
                f,
                "stack       {} not deployed in {}",
                self.stack_name, self.region
            )?,
        }
        match &self.function {
            Some(fun) => {
                writeln!(f, "function    {}", fun.name)?;
                writeln!(f, "  arn       {}", fun.arn)?;
                writeln!(
                    f,
                    "  config    {} MB, {} s, {}",
                    fun.memory_mb, fun.timeout_s, fun.architecture
                )?;
                writeln!(f, "  image     {}", fun.image_uri.as_deref().unwrap_or("-"))?;
                writeln!(
                    f,
                    "  modified  {}",
                    fun.last_modified.as_deref().unwrap_or("-")
                )?;
                writeln!(f, "  url       {}", fun.url.as_deref().unwrap_or("none"))?;
            }
            None => writeln!(f, "function    none")?,
        }
        match &self.repository {
            Some(r) => {
                writeln!(f, "repository  {} ({} images)", r.uri, self.images.len())?;
                for image in self.images.iter().take(10) {
                    writeln!(
                        f,
                        "  {}  {}  {}  {}",
                        &image.digest,
                        image.tags.join(","),
                        image.pushed_at.as_deref().unwrap_or("-"),
                        image.bytes.map(human_bytes).unwrap_or_default()
                    )?;
                }
            }
            None => writeln!(f, "repository  none")?,
        }
        Ok(())
    }
}

/// The function's configuration, or `None` when there is no such function.
pub async fn function_info(aws: &Aws) -> Result<Option<FunctionInfo>> {
    let out = match aws
        .lambda()
        .get_function()
        .function_name(&aws.names.function)
        .send()
        .await
    {
        Ok(out) => out,
        Err(e) if error_code(&e) == Some("ResourceNotFoundException") => return Ok(None),
        Err(e) => {
            return Err(anyhow!(describe(&e)))
                .with_context(|| format!("cannot read function {}", aws.names.function))
        }
    };
    let config = out
        .configuration()
        .context("GetFunction returned no configuration")?;
    let image_uri = out.code().and_then(|c| c.image_uri()).map(str::to_string);
    let image_digest = image_uri
        .as_deref()
        .and_then(|u| u.split_once('@'))
        .map(|(_, d)| d.to_string());
    Ok(Some(FunctionInfo {
        name: config.function_name().unwrap_or_default().to_string(),
        arn: config.function_arn().unwrap_or_default().to_string(),
        memory_mb: config.memory_size().unwrap_or_default(),
        timeout_s: config.timeout().unwrap_or_default(),
        architecture: config
            .architectures()
            .first()
            .map(|a| a.as_str().to_string())
            .unwrap_or_else(|| "x86_64".into()),
        image_uri,
        image_digest,
        last_modified: config.last_modified().map(str::to_string),
        state: config.state().map(|s| s.as_str().to_string()),
        url: function_url(aws, &aws.names.function).await?,
    }))
}

pub async fn run(global: &GlobalArgs) -> Result<ExitCode> {
    let aws = Aws::load(global).await;
    let stack = describe_stack(&aws, &aws.names.stack).await?;
    let function = function_info(&aws).await?;
    let repository = ecr::repository(&aws, &aws.names.repository).await?;
    let images = match &repository {
        Some(_) => ecr::images(&aws, &aws.names.repository).await?,
        None => Vec::new(),
    };
    emit(
        global.output,
        &InfoReport {
            region: aws.region(),
            stack_name: aws.names.stack.clone(),
            stack,
            function,
            repository,
            images,
        },
    )?;
    Ok(ExitCode::SUCCESS)
}
