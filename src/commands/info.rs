//! `info`: the deployed stack, function, URL, repository and images.

use std::fmt;
use std::process::ExitCode;

use anyhow::Result;
use serde::Serialize;

use crate::aws::Aws;
use crate::cli::GlobalArgs;
use crate::image::ecr::{self, ImageInfo, Repository};
use crate::image::registry::Registry;
use crate::lambda::{function_info, FunctionInfo, UrlAuth};
use crate::output::{emit, human_bytes};
use crate::stack::{describe_stack, StackState, TAG_REGISTRY};

#[derive(Debug, Clone, Serialize)]
pub struct InfoReport {
    pub region: String,
    pub stack_name: String,
    pub stack: Option<StackState>,
    pub function: Option<FunctionInfo>,
    pub repository: Option<Repository>,
    pub images: Vec<ImageInfo>,
    /// When deploy pushed to another registry (`--registry`): its images there.
    pub registry: Option<RegistryImages>,
}

/// The images in the registry deploy was given with `--registry` (recorded as a stack tag).
#[derive(Debug, Clone, Serialize)]
pub struct RegistryImages {
    pub registry: String,
    pub repository: String,
    /// Tag → manifest digest, newest tags last as the registry lists them.
    pub images: Vec<TaggedImage>,
    /// Why the registry could not be read, if it could not.
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaggedImage {
    pub tag: String,
    pub digest: Option<String>,
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
                match (&fun.url, fun.url_auth) {
                    (Some(url), Some(auth)) => {
                        writeln!(f, "  url       {url} (auth {})", auth.as_str())?
                    }
                    _ => writeln!(f, "  url       none")?,
                }
                match fun.public_access {
                    Some(access) if !access.complete() => writeln!(
                        f,
                        "  warning   the public URL's policy lacks {}: AWS answers 403 \
                         (since October 2025 a public URL needs lambda:InvokeFunctionUrl and \
                         lambda:InvokeFunction); deploy again to add it",
                        if access.invoke_function_url {
                            "lambda:InvokeFunction"
                        } else {
                            "lambda:InvokeFunctionUrl"
                        }
                    )?,
                    _ => {}
                }
                match (fun.reserved_concurrency, fun.url_auth) {
                    (Some(cap), _) => {
                        writeln!(f, "  cap       {cap} at once (reserved concurrency)")?
                    }
                    (None, Some(UrlAuth::None)) => writeln!(
                        f,
                        "  cap       none: anyone can use the account's whole concurrency; \
                         deploy --reserved-concurrency N"
                    )?,
                    (None, _) => {
                        writeln!(f, "  cap       none (the account's unreserved concurrency)")?
                    }
                }
            }
            None => writeln!(f, "function    none")?,
        }
        if let Some(r) = &self.registry {
            writeln!(
                f,
                "images      {}/{} (deploy's --registry; {})",
                r.registry,
                r.repository,
                match &r.error {
                    Some(e) => format!("cannot list them: {e}"),
                    None => format!("{} tagged", r.images.len()),
                }
            )?;
            for image in r.images.iter().rev().take(10) {
                writeln!(
                    f,
                    "  {}  {}",
                    image.digest.as_deref().unwrap_or("-"),
                    image.tag
                )?;
            }
        }
        match &self.repository {
            Some(r) if self.registry.is_some() && self.images.is_empty() => writeln!(
                f,
                "repository  {} (ECR: the credential for the registry above; no images here)",
                r.uri
            )?,
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
    let registry = match stack.as_ref().and_then(|s| s.tags.get(TAG_REGISTRY)) {
        Some(host) => Some(registry_images(&aws, host).await),
        None => None,
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
            registry,
        },
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The tags (and their digests) of this stage's repository in `host`, with the ECR login as
/// the credential, as deploy pushed them.
async fn registry_images(aws: &Aws, host: &str) -> RegistryImages {
    let repository = aws.names.repository.clone();
    let listed = async {
        let login = ecr::login(aws).await?;
        let registry = Registry::new(host, &login.username, &login.password)?;
        let mut images = Vec::new();
        for tag in registry.tags(&repository).await? {
            let digest = registry.manifest_digest(&repository, &tag).await?;
            images.push(TaggedImage { tag, digest });
        }
        anyhow::Ok(images)
    };
    let (images, error) = match listed.await {
        Ok(images) => (images, None),
        Err(e) => (Vec::new(), Some(format!("{e:#}"))),
    };
    RegistryImages {
        registry: host.to_string(),
        repository,
        images,
        error,
    }
}
