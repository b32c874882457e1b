//! `info`: the deployed stack, function, URL, repository and images.

use std::fmt;
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use crate::aws::Aws;
use crate::cli::GlobalArgs;
use crate::image::ecr::{self, ImageInfo, Repository};
use crate::lambda::{function_info, FunctionInfo};
use crate::output::{emit, human_bytes};
use crate::stack::{describe_stack, StackState};

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

pub async fn run(global: &GlobalArgs) -> Result<ExitCode> {
    let aws = Aws::load(&global.aws).await;
    let stack = describe_stack(&aws, &aws.names.stack).await?;
    let function = function_info(&aws, &aws.names.function).await?;
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
