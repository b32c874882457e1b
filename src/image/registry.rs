//! The registry HTTP API (Distribution v2, which ECR speaks too), with the ECR token as basic
//! auth: "is this manifest or blob there already", chunked resumable blob uploads and
//! manifest pushes for the daemonless builder, tag listing (for `info`) and manifest deletion
//! (for `destroy`). Every request is retried with backoff while the registry answers 5xx or
//! 429 or the connection fails; the token never leaves the registry's own scheme and host.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use ummatics_sentiment_client::retry::Backoff;

use crate::lambda::Arch;

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
    policy: UploadPolicy,
    /// Tags asked for per page of a tag listing (`n`); `None` takes the registry's own page.
    tag_page: Option<u32>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("base", &self.base)
            .finish()
    }
}

/// How blobs are uploaded: chunk size, patience and where unfinished uploads are recorded.
#[derive(Debug, Clone)]
pub struct UploadPolicy {
    /// Bytes per PATCH: [`CHUNK_BYTES`] by default. A registry that asks for more
    /// (`OCI-Chunk-Min-Length`) gets more.
    pub chunk_bytes: u64,
    /// How long one chunk may take (8 MiB in 120 s: about 0.6 Mbit/s at the least).
    pub chunk_timeout: Duration,
    /// Tries of one request (or one chunk) in a row before the upload gives up.
    pub attempts: usize,
    /// The first wait between tries; it doubles (with jitter) up to 30 s.
    pub first_backoff: Duration,
    /// Where an upload's session is recorded until it finishes, so that a killed run goes
    /// on from where it stopped (default: the user's cache directory).
    pub resume_dir: Option<PathBuf>,
}

/// ECR's parts: at least 5 MiB each but the last (UploadLayerPart), at most 10 MiB (ECR's
/// service quotas, "Layer part maximum size" — stated for its layer-upload API; the
/// registry endpoint's own limit is not documented either way, so both readings hold).
pub const ECR_MIN_PART_BYTES: u64 = 5 << 20;
pub const ECR_MAX_PART_BYTES: u64 = 10 << 20;

/// The chunk size of every upload: between ECR's least and largest part.
pub const CHUNK_BYTES: u64 = 8 << 20;

impl Default for UploadPolicy {
    fn default() -> Self {
        UploadPolicy {
            chunk_bytes: CHUNK_BYTES,
            chunk_timeout: Duration::from_secs(120),
            attempts: 6,
            first_backoff: Duration::from_millis(500),
            resume_dir: dirs::cache_dir().map(|d| d.join("ummatics-sentiment").join("uploads")),
        }
    }
}

/// The registry refused a manifest because blobs it references are unknown to it
/// (`MANIFEST_BLOB_UNKNOWN` / `BLOB_UNKNOWN` in the registry API's error body). A push that
/// has just uploaded them meets this when the registry lost one, or when another push of the
/// same blob was committing it at that moment (a registry writes a blob's record in place);
/// the pusher checks and uploads again — see `oci::push`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobsUnknown {
    pub host: String,
    /// The digests the registry named (empty when it named none: then any may be meant).
    pub digests: Vec<String>,
}

impl BlobsUnknown {
    /// Reads a registry error body: `Some` when one of its errors is about an unknown blob.
    pub fn of(host: &str, body: &str) -> Option<BlobsUnknown> {
        #[derive(Deserialize)]
        struct Errors {
            errors: Vec<ApiError>,
        }
        #[derive(Deserialize)]
        struct ApiError {
            code: String,
            #[serde(default)]
            detail: serde_json::Value,
        }
        let errors = serde_json::from_str::<Errors>(body).ok()?.errors;
        let unknown: Vec<&ApiError> = errors
            .iter()
            .filter(|e| matches!(e.code.as_str(), "MANIFEST_BLOB_UNKNOWN" | "BLOB_UNKNOWN"))
            .collect();
        if unknown.is_empty() {
            return None;
        }
        // The detail is the digest (distribution) or an object holding it.
        let mut digests: Vec<String> = unknown
            .iter()
            .filter_map(|e| match &e.detail {
                serde_json::Value::String(d) => Some(d.clone()),
                serde_json::Value::Object(o) => {
                    o.get("digest").and_then(|d| d.as_str()).map(str::to_string)
                }
                _ => None,
            })
            .filter(|d| d.starts_with("sha256:"))
            .collect();
        digests.sort_unstable();
        digests.dedup();
        Some(BlobsUnknown {
            host: host.to_string(),
            digests,
        })
    }

    /// Whether the registry's answer is about this blob.
    pub fn names(&self, digest: &str) -> bool {
        self.digests.is_empty() || self.digests.iter().any(|d| d == digest)
    }
}

impl fmt::Display for BlobsUnknown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.digests.is_empty() {
            write!(
                f,
                "registry {} refused the manifest: a blob it references is unknown to it",
                self.host
            )
        } else {
            write!(
                f,
                "registry {} refused the manifest: it does not know {}",
                self.host,
                self.digests.join(", ")
            )
        }
    }
}

impl std::error::Error for BlobsUnknown {}

impl UploadPolicy {
    /// The project's one retry schedule ([`Backoff`]) with this policy's tries.
    pub(crate) fn backoff(&self) -> impl Iterator<Item = Duration> {
        Backoff::new(self.attempts as u32, self.first_backoff).delays()
    }

    /// The record of an unfinished upload of `digest` to `base`/`repository`.
    fn session_file(&self, base: &str, repository: &str, digest: &str) -> Option<PathBuf> {
        let key = Sha256::digest(format!("{base}\n{repository}\n{digest}"));
        Some(
            self.resume_dir
                .as_ref()?
                .join(format!("{}.upload", hex::encode(&key[..16]))),
        )
    }
}

/// Where a blob's bytes come from.
#[derive(Debug, Clone)]
pub enum BlobSource {
    /// Bytes already in memory (the OCI builder's layers): chunks are views, not copies.
    Memory(Bytes),
    /// A file, read one chunk at a time: a layer of any size in bounded memory.
    File { path: PathBuf, len: u64 },
}

impl BlobSource {
    pub fn file(path: &Path) -> Result<BlobSource> {
        let len = std::fs::metadata(path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .len();
        Ok(BlobSource::File {
            path: path.to_path_buf(),
            len,
        })
    }

    pub fn len(&self) -> u64 {
        match self {
            BlobSource::Memory(bytes) => bytes.len() as u64,
            BlobSource::File { len, .. } => *len,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    async fn chunk(&self, offset: u64, len: u64) -> Result<Bytes> {
        match self {
            BlobSource::Memory(bytes) => Ok(bytes.slice(offset as usize..(offset + len) as usize)),
            BlobSource::File { path, .. } => {
                use tokio::io::{AsyncReadExt, AsyncSeekExt};
                let mut file = tokio::fs::File::open(path)
                    .await
                    .with_context(|| format!("cannot open {}", path.display()))?;
                file.seek(std::io::SeekFrom::Start(offset)).await?;
                let mut buffer = vec![0; len as usize];
                file.read_exact(&mut buffer)
                    .await
                    .with_context(|| format!("cannot read {} at byte {offset}", path.display()))?;
                Ok(buffer.into())
            }
        }
    }
}

/// What one blob upload took.
#[derive(Debug, Clone, Default, Serialize)]
pub struct UploadReport {
    /// Bytes sent in chunks the registry took (a resumed upload sends only the rest).
    pub sent_bytes: u64,
    /// Where a recorded session of a killed run was picked up, if one was.
    pub resumed_from: Option<u64>,
    /// Chunks sent again after a failure.
    pub retries: usize,
    /// Sessions the registry dropped, after which the blob started again from byte 0.
    pub restarts: usize,
}

/// An open upload session: where to PATCH next, and how many bytes the registry holds.
struct Session {
    location: String,
    offset: u64,
}

/// Why a chunk failed: for good, or in a way worth another try (after the Retry-After wait).
enum Failure {
    Fatal(anyhow::Error),
    Retry(anyhow::Error, Option<Duration>),
}

/// 5xx, 429 and 408: a busy or flaky registry, worth another try.
fn retryable(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

/// A Retry-After in seconds (at most two minutes are honoured).
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    let seconds: u64 = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(seconds.min(120)))
}

/// The bytes an upload status's `Range: 0-LAST` says the registry holds (`0-0` is read as
/// none: Distribution writes it for an empty session).
fn uploaded_bytes(range: &str) -> Option<u64> {
    let range = range.trim();
    let range = range.strip_prefix("bytes=").unwrap_or(range);
    let (first, last) = range.split_once('-')?;
    let (first, last): (u64, u64) = (first.parse().ok()?, last.parse().ok()?);
    match (first, last) {
        (0, 0) => Some(0),
        (0, last) => Some(last + 1),
        _ => None,
    }
}

/// `location` made absolute against `base`; refused when it leaves `base`'s scheme, host or
/// port (the registry's credentials go with every upload request).
fn same_origin(base: &str, location: &str) -> Result<String> {
    let base_url = reqwest::Url::parse(base).with_context(|| format!("bad registry URL {base}"))?;
    let url = base_url
        .join(location)
        .with_context(|| format!("the registry sent a bad URL {location:?}"))?;
    if url.scheme() != base_url.scheme()
        || url.host_str() != base_url.host_str()
        || url.port_or_known_default() != base_url.port_or_known_default()
    {
        bail!(
            "the registry pointed to {}, not to {base}: refusing to send the credentials to \
             another host or scheme",
            url.origin().ascii_serialization()
        );
    }
    Ok(url.into())
}

/// `url` with `key=value` added to its query.
fn with_query(url: &str, key: &str, value: &str) -> Result<String> {
    let mut url = reqwest::Url::parse(url).with_context(|| format!("bad registry URL {url}"))?;
    url.query_pairs_mut().append_pair(key, value);
    Ok(url.into())
}

/// The most pages of one tag listing read before giving up on a registry that never ends it.
const MAX_TAG_PAGES: usize = 10_000;

/// The `rel="next"` target of a `Link` header (RFC 8288), as the registry sent it.
fn next_link(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get_all(reqwest::header::LINK)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .find_map(|link| {
            let (target, params) = link.trim().strip_prefix('<')?.split_once('>')?;
            params
                .split(';')
                .filter_map(|param| param.trim().split_once('='))
                .any(|(key, value)| {
                    key.trim().eq_ignore_ascii_case("rel")
                        && value
                            .trim()
                            .trim_matches('"')
                            .split_ascii_whitespace()
                            .any(|rel| rel.eq_ignore_ascii_case("next"))
                })
                .then(|| target.to_string())
        })
}

/// The recorded session of an unfinished upload, if there is one.
fn read_session(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let location = text.trim();
    (!location.is_empty()).then(|| location.to_string())
}

/// Records an upload's session (best effort: without it, a killed run starts the blob again).
fn save_session(path: Option<&Path>, location: &str) {
    let Some(path) = path else { return };
    let write = || -> std::io::Result<()> {
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir)?;
        let mut temporary = tempfile::NamedTempFile::new_in(dir)?;
        std::io::Write::write_all(&mut temporary, location.as_bytes())?;
        temporary.persist(path)?;
        Ok(())
    };
    let _ = write();
}

impl Registry {
    /// `endpoint` is `HOST[:PORT]` or a URL; a bare host is reached over HTTPS, except
    /// loopback hosts (test registries, like Docker's own default for 127.0.0.0/8). Plain
    /// `http://` to any other host sends the token in clear text: refused unless `insecure`.
    pub fn new(endpoint: &str, username: &str, password: &str, insecure: bool) -> Result<Registry> {
        let (base, host) = endpoint_url(endpoint, insecure)?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("ummatics-sentiment/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(15))
            .timeout(Duration::from_secs(60))
            .build()
            .context("cannot build an HTTP client")?;
        Ok(Registry {
            base,
            host,
            username: username.to_string(),
            password: password.to_string(),
            http,
            policy: UploadPolicy::default(),
            tag_page: None,
        })
    }

    /// How this registry's uploads are retried.
    pub fn policy(&self) -> &UploadPolicy {
        &self.policy
    }

    /// The same registry with another upload policy.
    pub fn with_policy(mut self, policy: UploadPolicy) -> Registry {
        self.policy = policy;
        self
    }

    /// The same registry, asking for at most `n` tags per page of a tag listing (`n` ≥ 1).
    pub fn with_tag_page(mut self, n: u32) -> Registry {
        self.tag_page = Some(n.max(1));
        self
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

    /// Whether the registry answers and takes the credentials (`GET /v2/`, the API's own
    /// check): what a dry run proves before saying an image would be pushed there.
    pub async fn check(&self) -> Result<()> {
        let response = self
            .send("reach it", || self.request(reqwest::Method::GET, ""))
            .await?;
        match response.status() {
            status if status.is_success() => Ok(()),
            StatusCode::UNAUTHORIZED => Err(self.unauthorized()),
            other => bail!(
                "registry {} answered HTTP {other} to the API check (GET /v2/)",
                self.host
            ),
        }
    }

    /// The digest of `repository:reference`, or `None` when the registry does not have it.
    pub async fn manifest_digest(
        &self,
        repository: &str,
        reference: &str,
    ) -> Result<Option<String>> {
        let response = self
            .send("reach it", || {
                self.request(
                    reqwest::Method::HEAD,
                    &format!("{repository}/manifests/{reference}"),
                )
                .header(reqwest::header::ACCEPT, MANIFEST_TYPES)
            })
            .await?;
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

    /// The repository's tags in lexical order (none when the repository does not exist), every
    /// page read. The OCI distribution spec lets a registry answer a page at a time, with a
    /// `Link: <URL>; rel="next"` header for the rest (Distribution 3 does; 2.8, the test
    /// registry, never pages tags, so the test pages them in a proxy); the next page must be
    /// on this registry. The order is ours: Distribution 2.8 lists tags in its storage's
    /// directory order, which differs between hosts.
    pub async fn tags(&self, repository: &str) -> Result<Vec<String>> {
        #[derive(serde::Deserialize)]
        struct TagList {
            tags: Option<Vec<String>>,
        }
        let mut url = format!("{}/v2/{repository}/tags/list", self.base);
        if let Some(n) = self.tag_page {
            url = with_query(&url, "n", &n.to_string())?;
        }
        let mut tags = Vec::new();
        for _ in 0..MAX_TAG_PAGES {
            let response = self
                .send("list the tags", || self.authed(self.http.get(&url)))
                .await?;
            match response.status() {
                StatusCode::OK => {}
                StatusCode::NOT_FOUND if tags.is_empty() => return Ok(Vec::new()),
                StatusCode::UNAUTHORIZED => return Err(self.unauthorized()),
                other => bail!(
                    "registry {} answered HTTP {other} listing {repository}",
                    self.host
                ),
            }
            let next = match next_link(response.headers()) {
                Some(link) => Some(same_origin(&self.base, &link)?),
                None => None,
            };
            tags.extend(
                response
                    .json::<TagList>()
                    .await
                    .context("the registry's tag list is not JSON")?
                    .tags
                    .unwrap_or_default(),
            );
            match next {
                Some(next) => url = next,
                None => {
                    tags.sort_unstable();
                    return Ok(tags);
                }
            }
        }
        bail!(
            "registry {} kept answering more pages of {repository}'s tags ({MAX_TAG_PAGES} read, \
             {} tags): stopped there. Its tag listing never ends (a paging fault on its side): \
             list or delete the repository's images with the registry's own tools",
            self.host,
            tags.len()
        )
    }

    /// Whether the repository already holds this blob (HEAD, so nothing is transferred).
    pub async fn has_blob(&self, repository: &str, digest: &str) -> Result<bool> {
        let response = self
            .send("reach it", || {
                self.request(
                    reqwest::Method::HEAD,
                    &format!("{repository}/blobs/{digest}"),
                )
            })
            .await?;
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

    /// Uploads a blob in chunks: POST an upload session, PATCH the bytes `policy.chunk_bytes`
    /// at a time with `Content-Range`, PUT to close it with the digest. A chunk that fails
    /// (transport error, timeout, 5xx, 429) is retried with backoff from the offset the
    /// registry reports; a session the registry dropped starts again; a session left by a
    /// killed run (recorded under `policy.resume_dir`) is picked up where it stopped.
    /// `progress` is told the bytes the registry holds after each chunk.
    pub async fn upload_blob(
        &self,
        repository: &str,
        digest: &str,
        source: &BlobSource,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Result<UploadReport> {
        let length = source.len();
        let record = self.policy.session_file(&self.base, repository, digest);
        let mut report = UploadReport::default();
        let mut session = None;
        if let Some(location) = record.as_deref().and_then(read_session) {
            if let Ok(Some(offset)) = self.upload_offset(&location).await {
                if offset <= length {
                    report.resumed_from = Some(offset);
                    session = Some(Session { location, offset });
                }
            }
        }
        let mut delays = self.policy.backoff();
        let mut chunk_bytes = self.policy.chunk_bytes.max(1);
        loop {
            let current = match &mut session {
                Some(s) => s,
                None => {
                    let (location, least) = self.start_upload(repository).await?;
                    chunk_bytes = chunk_bytes.max(least);
                    save_session(record.as_deref(), &location);
                    session.insert(Session {
                        location,
                        offset: 0,
                    })
                }
            };
            if current.offset >= length {
                break;
            }
            let end = (current.offset + chunk_bytes).min(length);
            let chunk = source.chunk(current.offset, end - current.offset).await?;
            let (failure, wait) = match self
                .patch_chunk(&current.location, current.offset, chunk)
                .await
            {
                Ok(location) => {
                    report.sent_bytes += end - current.offset;
                    current.location = location;
                    current.offset = end;
                    save_session(record.as_deref(), &current.location);
                    progress(end);
                    delays = self.policy.backoff();
                    continue;
                }
                Err(Failure::Fatal(e)) => {
                    return Err(e.context(format!("cannot upload {digest} to {}", self.host)))
                }
                Err(Failure::Retry(e, wait)) => (e, wait),
            };
            let Some(delay) = delays.next() else {
                return Err(failure.context(format!(
                    "cannot upload {digest} to {}: {} attempts in a row failed (the registry \
                     keeps what it has: run deploy again to go on from byte {})",
                    self.host, self.policy.attempts, current.offset
                )));
            };
            report.retries += 1;
            tokio::time::sleep(delay.max(wait.unwrap_or_default())).await;
            // Where the registry really is: a chunk may have landed before its answer was lost.
            match self.upload_offset(&current.location).await {
                Ok(Some(offset)) if offset <= length => current.offset = offset,
                Ok(_) => {
                    // The registry dropped the session (Distribution does when a connection
                    // is cut mid-chunk): the blob starts again in a new one.
                    report.restarts += 1;
                    session = None;
                }
                // The next PATCH fails the same way and backs off again.
                Err(_) => {}
            }
        }
        let location = session.map(|s| s.location).unwrap_or_default();
        let url = with_query(&location, "digest", digest)?;
        let done = self
            .send(&format!("finish the upload of {digest}"), || {
                self.authed(self.http.put(&url))
                    .header(reqwest::header::CONTENT_LENGTH, 0)
            })
            .await?;
        if let Some(path) = &record {
            let _ = std::fs::remove_file(path);
        }
        match done.status() {
            s if s.is_success() => Ok(report),
            StatusCode::UNAUTHORIZED => Err(self.unauthorized()),
            // A retried PUT whose first try landed (its answer lost) finds no session.
            StatusCode::NOT_FOUND if self.has_blob(repository, digest).await? => Ok(report),
            other => bail!(
                "registry {} refused blob {digest} (HTTP {other}): {}",
                self.host,
                done.text().await.unwrap_or_default()
            ),
        }
    }

    /// POSTs a new upload session; its Location, and the least chunk size the registry takes
    /// (`OCI-Chunk-Min-Length`, 0 when it does not say).
    async fn start_upload(&self, repository: &str) -> Result<(String, u64)> {
        let started = self
            .send(&format!("start an upload to {repository}"), || {
                self.request(
                    reqwest::Method::POST,
                    &format!("{repository}/blobs/uploads/"),
                )
                .header(reqwest::header::CONTENT_LENGTH, 0)
            })
            .await?;
        match started.status() {
            StatusCode::ACCEPTED => {
                let least = started
                    .headers()
                    .get("oci-chunk-min-length")
                    .and_then(|v| v.to_str().ok()?.parse().ok())
                    .unwrap_or(0);
                Ok((self.location(&started)?, least))
            }
            StatusCode::UNAUTHORIZED => Err(self.unauthorized()),
            other => bail!(
                "registry {} refused to start an upload to {repository} (HTTP {other}): {}",
                self.host,
                started.text().await.unwrap_or_default()
            ),
        }
    }

    /// One PATCH of `bytes` at `offset`; the session's next Location.
    async fn patch_chunk(
        &self,
        location: &str,
        offset: u64,
        bytes: Bytes,
    ) -> std::result::Result<String, Failure> {
        let last = offset + bytes.len() as u64 - 1;
        let sent = self
            .authed(self.http.patch(location))
            .timeout(self.policy.chunk_timeout)
            .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
            .header(reqwest::header::CONTENT_RANGE, format!("{offset}-{last}"))
            .header(reqwest::header::CONTENT_LENGTH, bytes.len())
            .body(bytes)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                let what = if e.is_timeout() {
                    format!(
                        "the chunk at byte {offset} took over {} s",
                        self.policy.chunk_timeout.as_secs_f64()
                    )
                } else {
                    format!("the connection failed at byte {offset}")
                };
                return Err(Failure::Retry(anyhow::Error::new(e).context(what), None));
            }
        };
        let status = response.status();
        // ECR answers 201 where the spec says 202 (aws/containers-roadmap#2831); its Range
        // header lags, so the offset is what was sent, not what Range says.
        if status == StatusCode::ACCEPTED || status == StatusCode::CREATED {
            return self.location(&response).map_err(Failure::Fatal);
        }
        let wait = retry_after(&response);
        let body = response.text().await.unwrap_or_default();
        let error = anyhow::anyhow!("registry answered HTTP {status} at byte {offset}: {body}");
        match status {
            StatusCode::UNAUTHORIZED => Err(Failure::Fatal(self.unauthorized())),
            // 416: the registry is elsewhere; 404: the session is gone. The status check
            // that follows finds the offset or starts a new session.
            s if retryable(s)
                || s == StatusCode::RANGE_NOT_SATISFIABLE
                || s == StatusCode::NOT_FOUND =>
            {
                Err(Failure::Retry(error, wait))
            }
            _ => Err(Failure::Fatal(error)),
        }
    }

    /// How many bytes an upload session holds (`GET` on its Location: `Range: 0-LAST`), or
    /// `None` when the registry no longer knows the session.
    async fn upload_offset(&self, location: &str) -> Result<Option<u64>> {
        let response = self
            .send("read an upload's progress", || {
                self.authed(self.http.get(location))
            })
            .await?;
        match response.status() {
            StatusCode::NO_CONTENT => Ok(Some(
                match response
                    .headers()
                    .get(reqwest::header::RANGE)
                    .and_then(|v| v.to_str().ok())
                {
                    None => 0,
                    Some(range) => uploaded_bytes(range).with_context(|| {
                        format!("the registry answered an upload status with Range {range:?}")
                    })?,
                },
            )),
            StatusCode::UNAUTHORIZED => Err(self.unauthorized()),
            _ => Ok(None),
        }
    }

    /// Sends a request, again with backoff while it fails the way a busy or flaky registry
    /// fails (transport errors, 5xx, 429 with its Retry-After); other answers go back as they
    /// are. `make` builds the request afresh for each attempt.
    async fn send(
        &self,
        what: &str,
        make: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<reqwest::Response> {
        let mut delays = self.policy.backoff();
        loop {
            let (error, wait) = match make().send().await {
                Ok(r) if !retryable(r.status()) => return Ok(r),
                Ok(r) => {
                    let wait = retry_after(&r);
                    (anyhow::anyhow!("HTTP {}", r.status()), wait)
                }
                Err(e) => (anyhow::Error::new(e), None),
            };
            let Some(delay) = delays.next() else {
                return Err(error.context(format!(
                    "cannot {what} at registry {} ({} attempts)",
                    self.host, self.policy.attempts
                )));
            };
            tokio::time::sleep(delay.max(wait.unwrap_or_default())).await;
        }
    }

    fn authed(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        request.basic_auth(&self.username, Some(&self.password))
    }

    /// The absolute upload URL a registry answered with (it may send a relative one). An
    /// absolute one must stay on the registry's scheme, host and port: the token goes with it.
    fn location(&self, response: &reqwest::Response) -> Result<String> {
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .context("the registry answered an upload step without a Location")?;
        same_origin(&self.base, location)
    }

    /// PUTs a manifest under `reference` (a tag); returns the digest the registry computed.
    pub async fn put_manifest(
        &self,
        repository: &str,
        reference: &str,
        media_type: &str,
        bytes: Bytes,
    ) -> Result<String> {
        let response = self
            .send("reach it", || {
                self.request(
                    reqwest::Method::PUT,
                    &format!("{repository}/manifests/{reference}"),
                )
                .header(reqwest::header::CONTENT_TYPE, media_type)
                .body(bytes.clone())
            })
            .await?;
        if response.status() == StatusCode::UNAUTHORIZED {
            return Err(self.unauthorized());
        }
        if !response.status().is_success() {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            if let Some(unknown) = BlobsUnknown::of(&self.host, &body) {
                return Err(unknown.into());
            }
            bail!(
                "registry {} refused the manifest (HTTP {status}): {body}",
                self.host
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
        let (media_type, bytes) = self.manifest(repository, digest).await?;
        let stored = self
            .put_manifest(repository, tag, &media_type, bytes)
            .await?;
        if stored != digest {
            bail!(
                "registry {} stored {repository}:{tag} as {stored}, not {digest}",
                self.host
            );
        }
        Ok(true)
    }

    /// The manifest `reference` names: its media type and bytes.
    pub async fn manifest(&self, repository: &str, reference: &str) -> Result<(String, Bytes)> {
        let at = if reference.starts_with("sha256:") {
            "@"
        } else {
            ":"
        };
        let response = self
            .send("reach it", || {
                self.request(
                    reqwest::Method::GET,
                    &format!("{repository}/manifests/{reference}"),
                )
                .header(reqwest::header::ACCEPT, MANIFEST_TYPES)
            })
            .await?;
        match response.status() {
            StatusCode::OK => {}
            StatusCode::UNAUTHORIZED => return Err(self.unauthorized()),
            StatusCode::NOT_FOUND => bail!(
                "registry {} has no image {repository}{at}{reference} (expired or deleted?)",
                self.host
            ),
            other => bail!(
                "registry {} answered HTTP {other} for {repository}{at}{reference}",
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
            .with_context(|| format!("cannot read the manifest of {repository}{at}{reference}"))?;
        Ok((media_type, bytes))
    }

    /// The digest of the single-architecture image manifest Lambda can run for `arch`, from
    /// what `reference` names: that manifest itself, or — when it is an image index or a
    /// manifest list, as newer Docker versions push (the image beside an attestation) — the
    /// child for linux/`arch`. Lambda takes only a single-architecture image manifest ("Create
    /// a Lambda function using a container image").
    pub async fn image_manifest_for(
        &self,
        repository: &str,
        reference: &str,
        arch: Arch,
    ) -> Result<String> {
        let (media_type, bytes) = self.manifest(repository, reference).await?;
        match child_for(&media_type, &bytes, arch)
            .with_context(|| format!("{repository}:{reference} cannot run on Lambda"))?
        {
            Some(child) => {
                // The child must itself be an image manifest (an index of indexes is refused).
                let (child_type, child_bytes) = self.manifest(repository, &child).await?;
                if child_for(&child_type, &child_bytes, arch)?.is_some() {
                    bail!("{repository}@{child} is an index inside an index: Lambda needs a single-architecture image manifest");
                }
                Ok(child)
            }
            None => Ok(format!("sha256:{}", hex::encode(Sha256::digest(&bytes)))),
        }
    }

    /// Every tag of the repository with the digest it names (`None` for a tag deleted between
    /// the listing and its look-up).
    pub async fn tagged(&self, repository: &str) -> Result<Vec<(String, Option<String>)>> {
        let mut tagged = Vec::new();
        for tag in self.tags(repository).await? {
            let digest = self.manifest_digest(repository, &tag).await?;
            tagged.push((tag, digest));
        }
        Ok(tagged)
    }

    /// Deletes every tagged image of the repository; returns the digests removed.
    pub async fn delete_all(&self, repository: &str) -> Result<Vec<String>> {
        let mut removed = Vec::new();
        for (_, digest) in self.tagged(repository).await? {
            let Some(digest) = digest else {
                continue;
            };
            if removed.contains(&digest) {
                continue;
            }
            self.delete_manifest(repository, &digest).await?;
            removed.push(digest);
        }
        Ok(removed)
    }

    /// Deletes the image `repository@digest` with all its tags; `false` when it was not there.
    pub async fn delete_manifest(&self, repository: &str, digest: &str) -> Result<bool> {
        let response = self
            .send("reach it", || {
                self.request(
                    reqwest::Method::DELETE,
                    &format!("{repository}/manifests/{digest}"),
                )
            })
            .await?;
        match response.status() {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            StatusCode::METHOD_NOT_ALLOWED => bail!(
                "registry {} does not allow deletes (Distribution: storage.delete.enabled)",
                self.host
            ),
            StatusCode::UNAUTHORIZED => Err(self.unauthorized()),
            other => bail!(
                "registry {} answered HTTP {other} deleting {digest}",
                self.host
            ),
        }
    }
}

/// Image manifests, which Lambda runs; and indexes (manifest lists), which it refuses.
const IMAGE_MANIFESTS: [&str; 2] = [
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.oci.image.manifest.v1+json",
];
const INDEXES: [&str; 2] = [
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.oci.image.index.v1+json",
];

/// For an index (or manifest list): the digest of its linux/`arch` image, skipping
/// attestations (`unknown/unknown` platforms); for an image manifest: `None`. Anything else,
/// or an index without that platform, is refused with what it holds.
pub fn child_for(media_type: &str, bytes: &[u8], arch: Arch) -> Result<Option<String>> {
    #[derive(serde::Deserialize)]
    struct Index {
        #[serde(default)]
        manifests: Vec<Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        digest: String,
        #[serde(default, rename = "mediaType")]
        media_type: String,
        platform: Option<Platform>,
    }
    #[derive(serde::Deserialize)]
    struct Platform {
        architecture: String,
        os: String,
    }
    // A Content-Type may carry parameters; the manifest's own mediaType is the fallback.
    let media_type = media_type.split(';').next().unwrap_or_default().trim();
    if IMAGE_MANIFESTS.contains(&media_type) {
        return Ok(None);
    }
    if !INDEXES.contains(&media_type) {
        bail!("its manifest is {media_type:?}, not an image manifest or an index of them");
    }
    let index: Index = serde_json::from_slice(bytes).context("its index is not valid JSON")?;
    let platforms: Vec<String> = index
        .manifests
        .iter()
        .filter_map(|e| e.platform.as_ref())
        .map(|p| format!("{}/{}", p.os, p.architecture))
        .collect();
    index
        .manifests
        .into_iter()
        .find(|e| {
            e.platform
                .as_ref()
                .is_some_and(|p| p.os == "linux" && p.architecture == arch.oci_name())
                && (e.media_type.is_empty() || IMAGE_MANIFESTS.contains(&e.media_type.as_str()))
        })
        .map(|e| Some(e.digest))
        .with_context(|| {
            format!(
                "it is an index with no linux/{} image (it holds {}); Lambda needs a \
                 single-architecture image manifest",
                arch.oci_name(),
                if platforms.is_empty() {
                    "none".to_string()
                } else {
                    platforms.join(", ")
                }
            )
        })
}

/// `--registry` only works against stand-ins: Lambda pulls container images only from an ECR
/// repository in the function's own region ("Create a Lambda function using a container
/// image", Lambda Developer Guide), so a function deployed on AWS from another registry could
/// never start. `endpoint` is where the AWS calls go (`None`: AWS itself).
pub fn refuse_on_aws(endpoint: Option<&str>) -> Result<()> {
    if endpoint.is_none() {
        bail!(
            "--registry is refused against AWS: Lambda pulls container images only from an ECR \
             repository in the function's own region, so it could not run an image pushed \
             elsewhere. Drop --registry (deploy pushes to ECR), or point every AWS call at \
             stand-ins with --endpoint-url (or AWS_ENDPOINT_URL)"
        );
    }
    Ok(())
}

/// `(base URL, HOST[:PORT])` of a registry given as `HOST[:PORT]` or a URL: a bare host is
/// reached over HTTPS, except loopback hosts (test registries, like Docker's own default for
/// 127.0.0.0/8). Plain `http://` to any other host would send the token in clear text: refused
/// unless `insecure`. Deploy and destroy check `--registry` with this before any AWS call.
pub fn endpoint_url(endpoint: &str, insecure: bool) -> Result<(String, String)> {
    let endpoint = endpoint.trim_end_matches('/');
    let (base, host) = if let Some(rest) = endpoint.strip_prefix("https://") {
        (endpoint.to_string(), rest.to_string())
    } else if let Some(rest) = endpoint.strip_prefix("http://") {
        (endpoint.to_string(), rest.to_string())
    } else {
        let scheme = if is_loopback(endpoint) {
            "http"
        } else {
            "https"
        };
        (format!("{scheme}://{endpoint}"), endpoint.to_string())
    };
    if host.is_empty() || host.contains('/') || host.contains("://") {
        bail!("{endpoint:?} is not a registry address: pass HOST[:PORT], e.g. 127.0.0.1:5000");
    }
    if base.starts_with("http://") && !is_loopback(&host) && !insecure {
        bail!(
            "{endpoint} is plain HTTP: the registry token would cross the network in clear text. \
             Use https://{host}, or pass --insecure-registry if the network is yours"
        );
    }
    Ok((base, host))
}

/// Whether `HOST[:PORT]` names this machine.
fn is_loopback(host: &str) -> bool {
    let hostname = match host.rsplit_once(':') {
        Some((h, port)) if port.parse::<u16>().is_ok() => h,
        _ => host,
    };
    let hostname = hostname.trim_start_matches('[').trim_end_matches(']');
    hostname == "localhost"
        || hostname
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::BlobsUnknown;

    #[test]
    fn a_refusal_for_unknown_blobs_is_told_from_other_refusals() {
        // What Distribution answered a push racing another push of the same blob.
        let raced = r#"{"errors":[{"code":"DIGEST_INVALID","message":"provided digest did not match uploaded content"},{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry","detail":"sha256:4c99"}]}"#;
        let unknown = BlobsUnknown::of("r", raced).unwrap();
        assert_eq!(unknown.digests, ["sha256:4c99"]);
        assert!(unknown.names("sha256:4c99") && !unknown.names("sha256:other"));
        assert!(unknown.to_string().contains("does not know sha256:4c99"));
        // No digest named: any blob may be meant.
        let bare = r#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"}]}"#;
        assert!(BlobsUnknown::of("r", bare).unwrap().names("sha256:any"));
        let object = r#"{"errors":[{"code":"BLOB_UNKNOWN","detail":{"digest":"sha256:ab"}}]}"#;
        assert_eq!(
            BlobsUnknown::of("r", object).unwrap().digests,
            ["sha256:ab"]
        );
        // Other refusals, and bodies that are not the API's errors, stay plain errors.
        for other in [
            r#"{"errors":[{"code":"MANIFEST_INVALID","message":"bad"}]}"#,
            "<html>bad gateway</html>",
            "",
        ] {
            assert_eq!(BlobsUnknown::of("r", other), None, "{other}");
        }
    }

    #[test]
    fn an_index_resolves_to_the_image_for_the_architecture() {
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": [
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:aa",
                 "size": 1, "platform": {"architecture": "amd64", "os": "linux"}},
                {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:at",
                 "size": 1, "platform": {"architecture": "unknown", "os": "unknown"},
                 "annotations": {"vnd.docker.reference.type": "attestation-manifest"}},
            ]
        })
        .to_string();
        let oci_index = "application/vnd.oci.image.index.v1+json";
        assert_eq!(
            child_for(oci_index, index.as_bytes(), Arch::X86_64).unwrap(),
            Some("sha256:aa".into())
        );
        let e = child_for(oci_index, index.as_bytes(), Arch::Arm64).unwrap_err();
        assert!(
            e.to_string()
                .contains("no linux/arm64 image (it holds linux/amd64, unknown/unknown)"),
            "{e}"
        );
        assert_eq!(
            child_for(
                "application/vnd.docker.distribution.manifest.v2+json",
                b"{}",
                Arch::X86_64
            )
            .unwrap(),
            None
        );
        assert!(child_for(
            "application/vnd.docker.distribution.manifest.v1+prettyjws",
            b"{}",
            Arch::X86_64
        )
        .is_err());
    }

    #[test]
    fn chunks_fit_ecrs_parts() {
        let chunk = UploadPolicy::default().chunk_bytes;
        assert!(
            (ECR_MIN_PART_BYTES..=ECR_MAX_PART_BYTES).contains(&chunk),
            "{chunk} bytes per chunk: ECR takes 5 to 10 MiB"
        );
    }

    use super::*;

    #[test]
    fn plain_http_only_to_this_machine_unless_insecure() {
        assert!(endpoint_url("http://127.0.0.1:5000", false).is_ok());
        assert!(endpoint_url("http://localhost:5000", false).is_ok());
        assert!(endpoint_url("http://[::1]:5000", false).is_ok());
        let refused = endpoint_url("http://mirror.example:5000", false).unwrap_err();
        assert!(
            format!("{refused:#}").contains("--insecure-registry"),
            "{refused:#}"
        );
        // A name that only starts like a loopback one is not one.
        assert!(endpoint_url("http://localhost.example.com:5000", false).is_err());
        assert!(endpoint_url("http://127.0.0.1.nip.io", false).is_err());
        assert!(endpoint_url("http://mirror.example:5000", true).is_ok());
        assert!(endpoint_url("mirror.example:5000", false)
            .unwrap()
            .0
            .starts_with("https://"));
    }

    #[test]
    fn upload_locations_stay_on_the_registry() {
        let base = "https://r.example:8443";
        assert_eq!(
            same_origin(base, "/v2/x/blobs/uploads/u?_state=s").unwrap(),
            "https://r.example:8443/v2/x/blobs/uploads/u?_state=s"
        );
        assert!(same_origin(base, "https://r.example:8443/v2/x/blobs/uploads/u").is_ok());
        for elsewhere in [
            "https://evil.example:8443/v2/x",
            "http://r.example:8443/v2/x",
            "https://r.example/v2/x",
            "//evil.example/v2/x",
        ] {
            let e = same_origin(base, elsewhere).unwrap_err();
            assert!(format!("{e:#}").contains("refusing"), "{elsewhere}: {e:#}");
        }
        // The default port is the same port.
        assert!(same_origin("https://r.example", "https://r.example:443/v2/x").is_ok());
    }

    #[test]
    fn the_next_page_is_read_from_the_link_header() {
        use reqwest::header::{HeaderMap, HeaderValue, LINK};
        let mut headers = HeaderMap::new();
        assert_eq!(next_link(&headers), None);
        headers.insert(
            LINK,
            HeaderValue::from_static(r#"</v2/r/tags/list?last=b&n=2>; rel="next""#),
        );
        assert_eq!(
            next_link(&headers).as_deref(),
            Some("/v2/r/tags/list?last=b&n=2")
        );
        // Several links in one header, parameters in any order, `rel` unquoted or a list.
        headers.insert(
            LINK,
            HeaderValue::from_static(
                r#"</v2/r/tags/list?n=2>; rel="prev", <https://r.example/v2/r/tags/list?last=d>; type="x"; REL=next"#,
            ),
        );
        assert_eq!(
            next_link(&headers).as_deref(),
            Some("https://r.example/v2/r/tags/list?last=d")
        );
        headers.insert(
            LINK,
            HeaderValue::from_static(r#"</p?last=e>; rel="prefetch next""#),
        );
        assert_eq!(next_link(&headers).as_deref(), Some("/p?last=e"));
        for not_next in [r#"</p>; rel="prev""#, "garbage", r#"/p; rel="next""#] {
            headers.insert(LINK, HeaderValue::from_static(not_next));
            assert_eq!(next_link(&headers), None, "{not_next}");
        }
    }

    #[test]
    fn upload_status_ranges() {
        assert_eq!(uploaded_bytes("0-999"), Some(1000));
        assert_eq!(uploaded_bytes("bytes=0-15"), Some(16));
        assert_eq!(uploaded_bytes("0-0"), Some(0));
        assert_eq!(uploaded_bytes("5-9"), None);
        assert_eq!(uploaded_bytes("junk"), None);
        assert_eq!(
            with_query("http://h/v2/u?_state=a", "digest", "sha256:ab").unwrap(),
            "http://h/v2/u?_state=a&digest=sha256%3Aab"
        );
    }

    #[tokio::test]
    async fn chunks_of_a_file_are_its_bytes() {
        let mut file = tempfile::NamedTempFile::new().unwrap();
        let bytes: Vec<u8> = (0..=255u8).cycle().take(10_000).collect();
        std::io::Write::write_all(&mut file, &bytes).unwrap();
        let source = BlobSource::file(file.path()).unwrap();
        assert_eq!(source.len(), 10_000);
        assert_eq!(
            &source.chunk(300, 700).await.unwrap()[..],
            &bytes[300..1000]
        );
        let memory = BlobSource::Memory(bytes.clone().into());
        assert_eq!(&memory.chunk(9_990, 10).await.unwrap()[..], &bytes[9_990..]);
    }

    #[test]
    fn scheme_follows_the_host() {
        let r = Registry::new("127.0.0.1:5000", "AWS", "t", false).unwrap();
        assert_eq!(r.base, "http://127.0.0.1:5000");
        assert_eq!(r.image("repo"), "127.0.0.1:5000/repo");
        let r = Registry::new(
            "123456789012.dkr.ecr.us-east-1.amazonaws.com",
            "AWS",
            "t",
            false,
        )
        .unwrap();
        assert_eq!(
            r.base,
            "https://123456789012.dkr.ecr.us-east-1.amazonaws.com"
        );
        let r = Registry::new("https://mirror.example:8443/", "AWS", "t", false).unwrap();
        assert_eq!(r.host(), "mirror.example:8443");
        assert!(Registry::new("host/path", "AWS", "t", false).is_err());
    }
}
