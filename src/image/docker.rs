//! The Docker engine path: build the image from the rendered context through the Engine API
//! (bollard) and push it with the ECR token.

use std::collections::HashMap;

use anyhow::{anyhow, bail, Context, Result};
use bollard::auth::DockerCredentials;
use bollard::query_parameters::{BuildImageOptionsBuilder, PushImageOptionsBuilder};
use bollard::Docker;
use futures_util::StreamExt;
use serde::Serialize;

use super::registry::Registry;
use super::BuildContext;
use crate::lambda::Arch;
use crate::output::{human_bytes, Progress, Step};

/// What to tell a user whose engine does not answer.
pub fn unreachable_hint() -> String {
    let target =
        std::env::var("DOCKER_HOST").unwrap_or_else(|_| "unix:///var/run/docker.sock".into());
    format!(
        "the Docker engine at {target} does not answer: start it (`sudo systemctl start docker`, \
         or open Docker Desktop), or point DOCKER_HOST at a running one"
    )
}

/// A connected engine.
pub struct Engine {
    docker: Docker,
    pub version: EngineVersion,
}

/// The engine's version and the API version both sides agreed on.
#[derive(Debug, Clone, Serialize)]
pub struct EngineVersion {
    pub version: String,
    pub api_version: String,
    pub os: String,
    pub arch: String,
}

impl Engine {
    /// Connects through DOCKER_HOST (or the default socket) and negotiates the API version
    /// (Debian's dockerd 20.10 tops out at API 1.41).
    pub async fn connect() -> Result<Engine> {
        let docker = Docker::connect_with_local_defaults()
            .map_err(|e| anyhow!("{}: {e}", unreachable_hint()))?;
        let docker = docker
            .negotiate_version()
            .await
            .map_err(|e| anyhow!("{}: {e}", unreachable_hint()))?;
        let v = docker
            .version()
            .await
            .map_err(|e| anyhow!("{}: {e}", unreachable_hint()))?;
        let version = EngineVersion {
            version: v.version.unwrap_or_default(),
            api_version: docker.client_version().to_string(),
            os: v.os.unwrap_or_default(),
            arch: v.arch.unwrap_or_default(),
        };
        Ok(Engine { docker, version })
    }

    /// Builds `image` (REPOSITORY:TAG) from the context.
    pub async fn build(
        &self,
        context: &BuildContext,
        image: &str,
        base_image: &str,
        arch: Arch,
    ) -> Result<()> {
        let mut args = HashMap::new();
        args.insert("BASE_IMAGE".to_string(), base_image.to_string());
        let labels: HashMap<String, String> = context.labels.clone().into_iter().collect();
        let options = BuildImageOptionsBuilder::default()
            .dockerfile("Dockerfile")
            .t(image)
            .rm(true)
            .forcerm(true)
            .buildargs(&args)
            .labels(&labels)
            .platform(&format!("linux/{}", arch.oci_name()))
            .build();
        let body = bollard::body_full(context.tar.clone().into());
        let mut stream = self.docker.build_image(options, None, Some(body));
        let mut log = String::new();
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| anyhow!("the Docker build failed: {e}"))?;
            if let Some(text) = info.stream {
                log.push_str(&text);
            }
            if let Some(detail) = info.error_detail {
                bail!(
                    "the Docker build failed: {}\n{}",
                    detail.message.unwrap_or_default(),
                    log.trim_end()
                );
            }
        }
        Ok(())
    }

    /// The Docker path's build: the image built as `local` (REGISTRY/REPOSITORY:TAG) and, with
    /// `self_test`, its `bootstrap --self-test` run inside it (a failure removes the image and
    /// says so: nothing is pushed). Returns whether the self-test ran.
    pub async fn build_tested(
        &self,
        context: &BuildContext,
        local: &str,
        base_image: &str,
        arch: Arch,
        self_test: bool,
        step: &Step,
    ) -> Result<bool> {
        step.set(format!("building {local} ({})", context_summary(context)));
        self.build(context, local, base_image, arch).await?;
        if !self_test {
            return Ok(false);
        }
        step.set("smoke test: bootstrap --self-test inside the image");
        let (code, output) = self.run(local, &["--self-test"]).await?;
        if code != 0 {
            self.remove_image(local).await;
            bail!(
                "the image's self-test failed (exit {code}), nothing was pushed:\n{}",
                output.trim_end()
            );
        }
        Ok(true)
    }

    /// Pushes the image built as `registry`'s `repository:tag` with the registry's login, and
    /// returns the digest of its `arch` manifest as the registry holds it (what the engine
    /// pushed may be an index: newer Docker puts an attestation beside the image). The local
    /// image is removed afterwards.
    pub async fn push_to(
        &self,
        registry: &Registry,
        repository: &str,
        tag: &str,
        arch: Arch,
        progress: &Progress,
    ) -> Result<String> {
        let local = format!("{}:{tag}", registry.image(repository));
        let push = self
            .push(
                &registry.image(repository),
                tag,
                registry.username(),
                registry.password(),
                progress,
            )
            .await?;
        let digest = registry
            .image_manifest_for(repository, tag, arch)
            .await
            .context("reading back the image just pushed")?;
        if push.digest.as_deref().is_some_and(|d| d != digest) {
            progress.line(format!(
                "the engine pushed an index ({}); the function runs its {} image {digest}",
                push.digest.as_deref().unwrap_or_default(),
                arch.oci_name()
            ));
        }
        self.remove_image(&local).await;
        progress.line(format!("{tag} pushed ({push})"));
        Ok(digest)
    }

    /// Pushes `repository:tag` with the given credentials, reporting layers as they go.
    pub async fn push(
        &self,
        repository: &str,
        tag: &str,
        username: &str,
        password: &str,
        progress: &Progress,
    ) -> Result<PushReport> {
        let credentials = DockerCredentials {
            username: Some(username.to_string()),
            password: Some(password.to_string()),
            ..Default::default()
        };
        let options = PushImageOptionsBuilder::default().tag(tag).build();
        let mut stream = self
            .docker
            .push_image(repository, Some(options), Some(credentials));
        let mut report = PushReport::default();
        let bar = progress.bytes("pushing", 0);
        while let Some(item) = stream.next().await {
            let info = item.map_err(|e| anyhow!("the push to {repository} failed: {e}"))?;
            if let Some(detail) = info.error_detail {
                bail!(
                    "the push to {repository} failed: {}",
                    detail.message.unwrap_or_default()
                );
            }
            let status = info.status.unwrap_or_default();
            match status.as_str() {
                "Pushed" => {
                    report.layers_pushed += 1;
                    progress.line(format!("layer pushed ({} so far)", report.layers_pushed));
                }
                "Layer already exists" => {
                    report.layers_skipped += 1;
                    progress.line("layer already in the registry, skipped");
                }
                "Pushing" => {
                    if let (Some(bar), Some(detail)) = (&bar, info.progress_detail) {
                        if let (Some(current), Some(total)) = (detail.current, detail.total) {
                            bar.set_length(total.max(0) as u64);
                            bar.set_position(current.max(0) as u64);
                        }
                    }
                }
                s if s.contains("digest: sha256:") => {
                    report.digest = s
                        .split_whitespace()
                        .find(|w| w.starts_with("sha256:"))
                        .map(str::to_string);
                }
                _ => {}
            }
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        Ok(report)
    }

    /// Runs the image with arguments and no network; returns (exit code, output).
    pub async fn run(&self, image: &str, args: &[&str]) -> Result<(i64, String)> {
        use bollard::models::{ContainerCreateBody, HostConfig};
        use bollard::query_parameters::{LogsOptionsBuilder, RemoveContainerOptionsBuilder};
        let config = ContainerCreateBody {
            image: Some(image.to_string()),
            cmd: Some(args.iter().map(|a| a.to_string()).collect()),
            network_disabled: Some(true),
            host_config: Some(HostConfig {
                network_mode: Some("none".into()),
                ..Default::default()
            }),
            ..Default::default()
        };
        let created = self
            .docker
            .create_container(None, config)
            .await
            .with_context(|| format!("cannot create a container from {image}"))?;
        let id = created.id;
        let result = async {
            self.docker
                .start_container(&id, None)
                .await
                .with_context(|| format!("cannot start a container from {image}"))?;
            let mut code = 0;
            let mut wait = self.docker.wait_container(&id, None);
            while let Some(item) = wait.next().await {
                match item {
                    Ok(status) => code = status.status_code,
                    Err(bollard::errors::Error::DockerContainerWaitError { code: c, .. }) => {
                        code = c
                    }
                    Err(e) => return Err(e).context("waiting for the container failed"),
                }
            }
            let mut output = String::new();
            let mut logs = self.docker.logs(
                &id,
                Some(
                    LogsOptionsBuilder::default()
                        .stdout(true)
                        .stderr(true)
                        .build(),
                ),
            );
            while let Some(item) = logs.next().await {
                output.push_str(
                    &item
                        .context("cannot read the container's output")?
                        .to_string(),
                );
            }
            Ok((code, output))
        }
        .await;
        let _ = self
            .docker
            .remove_container(
                &id,
                Some(RemoveContainerOptionsBuilder::default().force(true).build()),
            )
            .await;
        result
    }

    /// Removes a local image (best effort: the pushed copy is what counts).
    pub async fn remove_image(&self, image: &str) {
        let _ = self
            .docker
            .remove_image(
                image,
                None::<bollard::query_parameters::RemoveImageOptions>,
                None,
            )
            .await;
    }
}

/// What a push did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PushReport {
    pub layers_pushed: usize,
    pub layers_skipped: usize,
    pub digest: Option<String>,
}

impl std::fmt::Display for PushReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} layer(s) pushed, {} already there",
            self.layers_pushed, self.layers_skipped
        )
    }
}

/// Context size for messages.
pub fn context_summary(context: &BuildContext) -> String {
    format!(
        "context {} ({})",
        &context.digest[..12],
        human_bytes(context.bytes)
    )
}
