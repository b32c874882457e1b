//! The registry HTTP API (Distribution v2, which ECR speaks too), with the ECR token as basic
//! auth: "is this manifest or blob there already", blob uploads and manifest pushes for the
//! daemonless builder, tag listing (for `info`) and manifest deletion (for `destroy`).

use anyhow::{bail, Context, Result};
use reqwest::StatusCode;

/// The manifest types deploy's images have (Docker v2 from the engine, OCI from the OCI
/// builder). Without this Accept header Distribution 2.x may answer with a schema-1 conversion.
const MANIFEST_TYPES: &str = "application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json, \
     application/vnd.oci.image.index.v1+json";

/// A registry and the credentials for it.
#[derive(Clone)]
pub struct Registry {
    /// `https://HOST[:PORT]` (or `http://` for loopback registries).
    base: String,
    /// `HOST[:PORT]`, as image references spell it.
    host: String,
    username: String,
    password: String,
    http: reqwest::Client,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("base", &self.base)
            .finish()
    }
}

impl Registry {
    /// `endpoint` is `HOST[:PORT]` or a URL; a bare host is reached over HTTPS, except
    /// loopback hosts (test registries, like Docker's own default for 127.0.0.0/8).
    pub fn new(endpoint: &str, username: &str, password: &str) -> Result<Registry> {
        let endpoint = endpoint.trim_end_matches('/');
        let (base, host) = if let Some(rest) = endpoint.strip_prefix("https://") {
            (endpoint.to_string(), rest.to_string())
        } else if let Some(rest) = endpoint.strip_prefix("http://") {
            (endpoint.to_string(), rest.to_string())
        } else {
            let hostname = endpoint.rsplit_once(':').map_or(endpoint, |(h, _)| h);
            let loopback = hostname == "localhost"
                || hostname
                    .parse::<std::net::IpAddr>()
                    .is_ok_and(|ip| ip.is_loopback());
            let scheme = if loopback { "http" } else { "https" };
            (format!("{scheme}://{endpoint}"), endpoint.to_string())
        };
        if host.is_empty() || host.contains('/') {
            bail!("{endpoint:?} is not a registry address: pass HOST[:PORT], e.g. 127.0.0.1:5000");
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("ummatics-sentiment/", env!("CARGO_PKG_VERSION")))
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .context("cannot build an HTTP client")?;
        Ok(Registry {
            base,
            host,
            username: username.to_string(),
            password: password.to_string(),
            http,
        })
    }

    /// `HOST[:PORT]` for image references.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `HOST[:PORT]/REPOSITORY`.
    pub fn image(&self, repository: &str) -> String {
        format!("{}/{repository}", self.host)
    }

    pub fn username(&self) -> &str {
        &self.username
    }

    pub fn password(&self) -> &str {
        &self.password
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}/v2/{path}", self.base))
            .basic_auth(&self.username, Some(&self.password))
    }

    fn unauthorized(&self) -> anyhow::Error {
        anyhow::anyhow!(
            "registry {} refused the credentials (HTTP 401): the ECR token may have expired; run deploy again",
            self.host
        )
    }

    /// The digest of `repository:reference`, or `None` when the registry does not have it.
    pub async fn manifest_digest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<String>> {
        let response = self
            .request(
                reqwest::Method::HEAD,
                &format!("{repository}/manifests/{reference}"),
            )
            .header(reqwest::header::ACCEPT, MANIFEST_TYPES)
            .send()
            .await
            .with_context(|| format!("cannot reach registry {}", self.host))?;
        match response.status() {
            StatusCode::OK => {
                let digest = response
                    .headers()
                    .get("docker-content-digest")
                    .and_then(|v| v.to_str().ok())
                    .context("the registry answered without a Docker-Content-Digest header")?;
                Ok(Some(digest.to_string()))
            }
            StatusCode::NOT_FOUND => Ok(None),
            StatusCode::UNAUTHORIZED => Err(self.unauthorized()),
            other => bail!(
                "registry {} answered HTTP {other} for {repository}:{reference}",
                self.host
            ),
        }
    }

    /// The repository's tags (none when the repository does not exist).
    pub async fn tags(&self, repository: &str) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct TagList {
            tags: Option<Vec<String>>,
        }
        let response = self
            .request(reqwest::Method::GET, &format!("{repository}/tags/list"))
            .send()
            .await
            .with_context(|| format!("cannot reach registry {}", self.host))?;
        match response.status() {
            StatusCode::OK => Ok(response
                .json::<TagList>()
                .await
                .context("the registry's tag list is not JSON")?
                .tags
                .unwrap_or_default()),
            StatusCode::NOT_FOUND => Ok(Vec::new()),
            StatusCode::UNAUTHORIZED => Err(self.unauthorized()),
            other => bail!(
                "registry {} answered HTTP {other} listing {repository}",
                self.host
            ),
        }
    }

    /// Whether the repository already holds this blob (HEAD, so nothing is transferred).
    pub async fn has_blob(&self, repository: &str, digest: &str) -> Result<bool> {
        let response = self
            .request(
                reqwest::Method::HEAD,
                &format!("{repository}/blobs/{digest}"),
            )
            .send()
            .await
            .with_context(|| format!("cannot reach registry {}", self.host))?;
        match response.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            StatusCode::UNAUTHORIZED => Err(self.unauthorized()),
            other => bail!(
                "registry {} answered HTTP {other} for blob {digest}",
                self.host
            ),
        }
    }

    /// Uploads a blob the way the Docker client does (POST an upload session, PATCH the bytes,
    /// PUT to close it with the digest) — the flow every registry, ECR included, accepts.
    pub async fn upload_blob(&self, repository: &str, digest: &str, bytes: Vec<u8>) -> Result<()> {
        let started = self
            .request(
                reqwest::Method::POST,
                &format!("{repository}/blobs/uploads/"),
            )
            .header(reqwest::header::CONTENT_LENGTH, 0)
            .send()
            .await
            .with_context(|| format!("cannot reach registry {}", self.host))?;
        match started.status() {
            StatusCode::ACCEPTED => {}
            StatusCode::UNAUTHORIZED => return Err(self.unauthorized()),
            other => bail!(
                "registry {} refused to start an upload to {repository} (HTTP {other}): {}",
                self.host,
                started.text().await.unwrap_or_default()
            ),
        }
        let location = self.location(&started)?;
        let length = bytes.len();
        let patched = self
            .http
            .patch(&location)
            .basic_auth(&self.username, Some(&self.password))
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(reqwest::header::CONTENT_LENGTH, length)
            .body(bytes)
            .send()
            .await
            .with_context(|| format!("cannot upload {digest} to {}", self.host))?;
        if patched.status() != StatusCode::ACCEPTED {
            bail!(
                "registry {} refused the bytes of {digest} (HTTP {}): {}",
                self.host,
                patched.status(),
                patched.text().await.unwrap_or_default()
            );
        }
        let mut url = self.location(&patched)?;
        url.push(if url.contains('?') { '&' } else { '?' });
        url.push_str(&format!("digest={digest}"));
        let done = self
            .http
            .put(url)
            .basic_auth(&self.username, Some(&self.password))
            .header(reqwest::header::CONTENT_LENGTH, 0)
            .send()
            .await
            .with_context(|| format!("cannot finish the upload of {digest} to {}", self.host))?;
        if !done.status().is_success() {
            bail!(
                "registry {} refused blob {digest} (HTTP {}): {}",
                self.host,
                done.status(),
                done.text().await.unwrap_or_default()
            );
        }
        Ok(())
    }

    /// The absolute upload URL a registry answered with (it may send a relative one).
    fn location(&self, response: &reqwest::Response) -> Result<String> {
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .context("the registry answered an upload step without a Location")?;
        Ok(
            if location.starts_with("http://") || location.starts_with("https://") {
                location.to_string()
            } else {
                format!("{}{location}", self.base)
            },
        )
    }

    /// PUTs a manifest under `reference` (a tag); returns the digest the registry computed.
    pub async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: Vec<u8>,
    ) -> Result<String> {
        let response = self
            .request(
                reqwest::Method::PUT,
                &format!("{repository}/manifests/{reference}"),
            )
            .header(reqwest::header::CONTENT_TYPE, media_type)
            .body(bytes)
            .send()
            .await
            .with_context(|| format!("cannot reach registry {}", self.host))?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(self.unauthorized());
        }
        if !response.status().is_success() {
            bail!(
                "registry {} refused the manifest (HTTP {}): {}",
                self.host,
                response.status(),
                response.text().await.unwrap_or_default()
            );
        }
        response
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .context("the registry stored the manifest without saying its digest")
    }

    /// Gives the image `repository@digest` another tag (its manifest PUT again under `tag`;
    /// no blob moves). A tag that named another image now names this one. Returns `false`
    /// when the tag already named this image (nothing is uploaded then).
    pub async fn add_tag(&self, repository: &str, digest: &str, tag: &str) -> Result<bool> {
        if self.manifest_digest(repository, tag).await?.as_deref() == Some(digest) {
            return Ok(false);
        }
        let response = self
            .request(
                reqwest::Method::GET,
                &format!("{repository}/manifests/{digest}"),
            )
            .header(reqwest::header::ACCEPT, MANIFEST_TYPES)
            .send()
            .await
            .with_context(|| format!("cannot reach registry {}", self.host))?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED => return Err(self.unauthorized()),
            StatusCode::NOT_FOUND => bail!(
                "registry {} has no image {repository}@{digest} (expired or deleted?)",
                self.host
            ),
            other => bail!(
                "registry {} answered HTTP {other} for {repository}@{digest}",
                self.host
            ),
        }
        let media_type = response
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .context("the registry answered a manifest without a Content-Type")?
            .to_string();
        let bytes = response
            .bytes()
            .await
            .with_context(|| format!("cannot read the manifest of {repository}@{digest}"))?;
        let stored = self
            .put_manifest(repository, tag, &media_type, bytes.to_vec())
            .await?;
        if stored != digest {
            bail!(
                "registry {} stored {repository}:{tag} as {stored}, not {digest}",
                self.host
            );
        }
        Ok(true)
    }

    /// Deletes every tagged image of the repository; returns the digests removed.
    pub async fn delete_all(&self, repository: &str) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for tag in self.tags(repository).await? {
            let Some(digest) = self.manifest_digest(repository, &tag).await? else {
                continue;
            };
            if removed.contains(&digest) {
                continue;
            }
            let response = self
                .request(
                    reqwest::Method::DELETE,
                    &format!("{repository}/manifests/{digest}"),
                )
                .send()
                .await
                .with_context(|| format!("cannot reach registry {}", self.host))?;
            match response.status() {
                s if s.is_success() || s == StatusCode::NOT_FOUND => removed.push(digest),
                StatusCode::METHOD_NOT_ALLOWED => bail!(
                    "registry {} does not allow deletes (Distribution: storage.delete.enabled)",
                    self.host
                ),
                StatusCode::UNAUTHORIZED => return Err(self.unauthorized()),
                other => bail!(
                    "registry {} answered HTTP {other} deleting {digest}",
                    self.host
                ),
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scheme_follows_the_host() {
        let r = Registry::new("127.0.0.1:5000", "AWS", "t").unwrap();
        assert_eq!(r.base, "http://127.0.0.1:5000");
        assert_eq!(r.image("repo"), "127.0.0.1:5000/repo");
        let r = Registry::new("123456789012.dkr.ecr.us-east-1.amazonaws.com", "AWS", "t").unwrap();
        assert_eq!(
            r.base,
            "https://123456789012.dkr.ecr.us-east-1.amazonaws.com"
        );
        let r = Registry::new("https://mirror.example:8443/", "AWS", "t").unwrap();
        assert_eq!(r.host(), "mirror.example:8443");
        assert!(Registry::new("host/path", "AWS", "t").is_err());
    }
}
