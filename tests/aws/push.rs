//! The registry client against the real registry through a fault-injecting proxy: chunked
//! uploads that survive 500s, 429s, cut connections and stalls; a slow link; a killed push that
//! goes on without sending its finished chunks again.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use ummatics_sentiment::image::registry::{BlobSource, Registry, UploadPolicy};

use crate::common::{standins, ECR_PASSWORD};

const MIB: u64 = 1 << 20;

/// What the proxy does to one PATCH (numbered from 0 in the order they arrive).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Fault {
    /// Reads the chunk, answers this status (429 with `Retry-After: 1`); the registry sees
    /// nothing.
    Status(u16),
    /// Forwards half the chunk, then cuts both connections.
    Cut,
    /// Reads the chunk and never answers (the client's chunk timeout, or a killed client,
    /// ends it); the registry sees nothing.
    Stall,
}

/// What the proxy does to manifest PUTs, for as many of them as `times` says.
#[derive(Debug, Clone)]
pub(crate) enum ManifestFault {
    /// Answers 400 `MANIFEST_BLOB_UNKNOWN` naming this digest without forwarding (what a push
    /// sees when another push of the same blob is committing it at that moment).
    Refuse(String),
    /// Deletes this blob from the manifest's repository first (with the request's own
    /// credentials), then forwards: the registry itself then refuses the manifest.
    DeleteBlob(String),
}

/// A TCP proxy in front of the registry (or moto) that speaks just enough HTTP/1.1 to count
/// requests, inject faults into PATCHes, throttle bodies, and hold every request after a
/// given AWS query action. One request per connection (it forwards `Connection: close`), so
/// responses need no parsing.
pub(crate) struct FaultProxy {
    pub(crate) address: String,
    pub(crate) hold: Arc<Hold>,
    faults: Arc<Mutex<HashMap<usize, Fault>>>,
    patches: Arc<AtomicUsize>,
    pub(crate) stalled: Arc<AtomicUsize>,
    /// Body bytes of PATCHes that reached the registry.
    forwarded: Arc<AtomicU64>,
    /// Bytes per second for request bodies (0: as fast as it goes).
    rate: Arc<AtomicU64>,
    /// Tags per page of a tag listing when the client asks for no `n` (0: the registry's
    /// answer as it is); see [`FaultProxy::page_tags`].
    tag_page: Arc<AtomicUsize>,
    /// Pages of tag listings the proxy answered.
    pub(crate) tag_pages: Arc<AtomicUsize>,
    /// A fault for the next manifest PUTs, and how many of them.
    manifest_fault: Arc<Mutex<Option<(ManifestFault, usize)>>>,
    /// Manifest PUTs that arrived.
    manifest_puts: Arc<AtomicUsize>,
}

impl FaultProxy {
    pub(crate) async fn start(upstream: &str) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = FaultProxy {
            address: listener.local_addr().unwrap().to_string(),
            faults: Arc::default(),
            patches: Arc::default(),
            stalled: Arc::default(),
            forwarded: Arc::default(),
            rate: Arc::default(),
            hold: Arc::default(),
            tag_page: Arc::default(),
            tag_pages: Arc::default(),
            manifest_fault: Arc::default(),
            manifest_puts: Arc::default(),
        };
        let hold = proxy.hold.clone();
        let (faults, patches, stalled, forwarded, rate) = (
            proxy.faults.clone(),
            proxy.patches.clone(),
            proxy.stalled.clone(),
            proxy.forwarded.clone(),
            proxy.rate.clone(),
        );
        let (tag_page, tag_pages) = (proxy.tag_page.clone(), proxy.tag_pages.clone());
        let (manifest_fault, manifest_puts) =
            (proxy.manifest_fault.clone(), proxy.manifest_puts.clone());
        let upstream = upstream.to_string();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let connection = Connection {
                    upstream: upstream.clone(),
                    faults: faults.clone(),
                    patches: patches.clone(),
                    stalled: stalled.clone(),
                    forwarded: forwarded.clone(),
                    rate: rate.load(Ordering::SeqCst),
                    hold: hold.clone(),
                    tag_page: tag_page.load(Ordering::SeqCst),
                    tag_pages: tag_pages.clone(),
                    manifest_fault: manifest_fault.clone(),
                    manifest_puts: manifest_puts.clone(),
                };
                tokio::spawn(async move {
                    let _ = connection.serve(client).await;
                });
            }
        });
        proxy
    }

    pub(crate) fn fault(&self, patch: usize, fault: Fault) {
        self.faults.lock().unwrap().insert(patch, fault);
    }

    /// From now on, the first request whose form body names `Action=<action>` goes through
    /// and every request after it is held unanswered (what a client polling a slow
    /// CloudFormation sees, frozen).
    pub(crate) fn hold_after(&self, action: &str) {
        *self.hold.action.lock().unwrap() = Some(format!("Action={action}&"));
        self.hold.holding.store(false, Ordering::SeqCst);
        self.hold.held.store(0, Ordering::SeqCst);
    }

    /// From now on, tag listings are answered a page at a time as the OCI distribution spec
    /// allows (Debian's Distribution 2.8 never pages them): tags in lexical order after the
    /// query's `last`, at most its `n` (`default` when it names none), and a
    /// `Link: <…>; rel="next"` header while more remain. The tags are the registry's.
    pub(crate) fn page_tags(&self, default: usize) {
        self.tag_page.store(default, Ordering::SeqCst);
    }

    /// The next `times` manifest PUTs meet `fault`.
    pub(crate) fn fault_manifests(&self, fault: ManifestFault, times: usize) {
        *self.manifest_fault.lock().unwrap() = Some((fault, times));
    }

    fn registry(&self, policy: UploadPolicy) -> Registry {
        Registry::new(&self.address, "AWS", ECR_PASSWORD, false)
            .unwrap()
            .with_policy(policy)
    }
}

/// See [`FaultProxy::hold_after`].
#[derive(Default)]
pub(crate) struct Hold {
    action: Mutex<Option<String>>,
    holding: std::sync::atomic::AtomicBool,
    /// Requests held so far.
    pub(crate) held: AtomicUsize,
}

struct Connection {
    hold: Arc<Hold>,
    upstream: String,
    faults: Arc<Mutex<HashMap<usize, Fault>>>,
    patches: Arc<AtomicUsize>,
    stalled: Arc<AtomicUsize>,
    forwarded: Arc<AtomicU64>,
    rate: u64,
    tag_page: usize,
    tag_pages: Arc<AtomicUsize>,
    manifest_fault: Arc<Mutex<Option<(ManifestFault, usize)>>>,
    manifest_puts: Arc<AtomicUsize>,
}

impl Connection {
    /// The fault this manifest PUT meets, if any (counting it down).
    fn manifest_fault(&self) -> Option<ManifestFault> {
        self.manifest_puts.fetch_add(1, Ordering::SeqCst);
        let mut slot = self.manifest_fault.lock().unwrap();
        let (fault, times) = slot.as_mut()?;
        let fault = fault.clone();
        *times -= 1;
        if *times == 0 {
            *slot = None;
        }
        Some(fault)
    }

    /// A connection to the upstream with the request head sent (`Connection: close`, so the
    /// answer ends with the connection).
    async fn upstream(&self, lines: &[&str]) -> std::io::Result<TcpStream> {
        let mut server = TcpStream::connect(&self.upstream).await?;
        let head = format!("{}\r\nConnection: close\r\n\r\n", lines.join("\r\n"));
        server.write_all(head.as_bytes()).await?;
        Ok(server)
    }

    async fn serve(self, mut client: TcpStream) -> std::io::Result<()> {
        // The request head, byte by byte up to the blank line (heads are small).
        let mut head = Vec::new();
        while !head.ends_with(b"\r\n\r\n") {
            let byte = client.read_u8().await?;
            head.push(byte);
        }
        let text = String::from_utf8_lossy(&head).to_string();
        let method = text.split(' ').next().unwrap_or_default().to_string();
        let mut length = 0u64;
        let mut lines: Vec<&str> = Vec::new();
        for line in text.split("\r\n").filter(|l| !l.is_empty()) {
            let lower = line.to_ascii_lowercase();
            if let Some(value) = lower.strip_prefix("content-length:") {
                length = value.trim().parse().unwrap_or(0);
            }
            if !lower.starts_with("connection:") {
                lines.push(line);
            }
        }
        if self.hold.holding.load(Ordering::SeqCst) {
            self.hold.held.fetch_add(1, Ordering::SeqCst);
            let mut rest = [0u8; 1024];
            while client.read(&mut rest).await? > 0 {}
            return Ok(());
        }
        if self.tag_page > 0 && method == "GET" && lines[0].contains("/tags/list") {
            return self.page_of_tags(client, lines).await;
        }
        let action = self.hold.action.lock().unwrap().clone();
        if let (Some(action), "POST") = (action, method.as_str()) {
            // A form body: small, read whole to find its action.
            let mut body = vec![0u8; length as usize];
            client.read_exact(&mut body).await?;
            let mut server = self.upstream(&lines).await?;
            server.write_all(&body).await?;
            // Holding starts before the answer goes back: the client's next request may come
            // before the server closes this connection.
            if String::from_utf8_lossy(&body).contains(&action) {
                self.hold.holding.store(true, Ordering::SeqCst);
            }
            tokio::io::copy(&mut server, &mut client).await?;
            return client.shutdown().await;
        }
        if method == "PUT" && lines[0].contains("/manifests/") {
            // "PUT /v2/<repository>/manifests/<reference> HTTP/1.1"
            let path = lines[0].split(' ').nth(1).unwrap_or_default();
            let repository = path
                .trim_start_matches("/v2/")
                .split("/manifests/")
                .next()
                .unwrap_or_default()
                .to_string();
            match self.manifest_fault() {
                Some(ManifestFault::Refuse(digest)) => {
                    discard(&mut client, length).await?;
                    let body = format!(
                        r#"{{"errors":[{{"code":"MANIFEST_BLOB_UNKNOWN","message":"blob unknown to registry","detail":"{digest}"}}]}}"#
                    );
                    let answer = format!(
                        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    client.write_all(answer.as_bytes()).await?;
                    return client.shutdown().await;
                }
                Some(ManifestFault::DeleteBlob(digest)) => {
                    let request = format!("DELETE /v2/{repository}/blobs/{digest} HTTP/1.1");
                    let mut delete = vec![request.as_str(), "Content-Length: 0"];
                    delete.extend(lines.iter().copied().filter(|l| {
                        let lower = l.to_ascii_lowercase();
                        lower.starts_with("host:") || lower.starts_with("authorization:")
                    }));
                    let mut server = self.upstream(&delete).await?;
                    let mut answer = String::new();
                    server.read_to_string(&mut answer).await?;
                    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
                }
                None => {}
            }
        }
        let fault = if method == "PATCH" {
            let n = self.patches.fetch_add(1, Ordering::SeqCst);
            self.faults.lock().unwrap().get(&n).copied()
        } else {
            None
        };
        match fault {
            Some(Fault::Status(code)) => {
                discard(&mut client, length).await?;
                let wait = if code == 429 {
                    "Retry-After: 1\r\n"
                } else {
                    ""
                };
                let answer = format!(
                    "HTTP/1.1 {code} Injected\r\n{wait}Content-Length: 0\r\nConnection: close\r\n\r\n"
                );
                client.write_all(answer.as_bytes()).await?;
                return client.shutdown().await;
            }
            Some(Fault::Stall) => {
                self.stalled.fetch_add(1, Ordering::SeqCst);
                discard(&mut client, length).await?;
                // Until the client gives up (its timeout, or it was killed).
                let mut rest = [0u8; 1024];
                while client.read(&mut rest).await? > 0 {}
                return Ok(());
            }
            _ => {}
        }
        let mut server = self.upstream(&lines).await?;
        let send = match fault {
            Some(Fault::Cut) => length / 2,
            _ => length,
        };
        let mut left = send;
        let mut buffer = vec![0u8; 64 * 1024];
        let started = std::time::Instant::now();
        while left > 0 {
            let want = buffer.len().min(left as usize);
            let n = client.read(&mut buffer[..want]).await?;
            if n == 0 {
                return Ok(());
            }
            server.write_all(&buffer[..n]).await?;
            left -= n as u64;
            if method == "PATCH" {
                self.forwarded.fetch_add(n as u64, Ordering::SeqCst);
            }
            if self.rate > 0 {
                let due = Duration::from_secs_f64((send - left) as f64 / self.rate as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    tokio::time::sleep(wait).await;
                }
            }
        }
        if matches!(fault, Some(Fault::Cut)) {
            // Both sides see the connection die mid-body.
            return Ok(());
        }
        let (mut from_server, _) = server.split();
        tokio::io::copy(&mut from_server, &mut client).await?;
        client.shutdown().await
    }
}

impl Connection {
    /// One page of the registry's whole tag list (see [`FaultProxy::page_tags`]).
    async fn page_of_tags(
        self,
        mut client: TcpStream,
        mut lines: Vec<&str>,
    ) -> std::io::Result<()> {
        let target = lines[0].split(' ').nth(1).unwrap_or_default().to_string();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let mut n = self.tag_page;
        let mut last = String::new();
        // (The tags here need no percent-decoding.)
        for (key, value) in query.split('&').filter_map(|pair| pair.split_once('=')) {
            match key {
                "n" => n = value.parse().unwrap(),
                "last" => last = value.to_string(),
                _ => {}
            }
        }
        let whole = format!("GET {path} HTTP/1.1");
        lines[0] = &whole;
        let mut server = self.upstream(&lines).await?;
        let mut answer = Vec::new();
        server.read_to_end(&mut answer).await?;
        let split = answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        if !answer.starts_with(b"HTTP/1.1 200") {
            client.write_all(&answer).await?;
            return client.shutdown().await;
        }
        let list: serde_json::Value = serde_json::from_slice(&answer[split..]).unwrap();
        let mut tags: Vec<&str> = list["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .filter(|t| last.is_empty() || *t > last.as_str())
            .collect();
        tags.sort();
        let link = if tags.len() > n {
            tags.truncate(n);
            format!(
                "Link: <{path}?n={n}&last={}>; rel=\"next\"\r\n",
                tags[n - 1]
            )
        } else {
            String::new()
        };
        self.tag_pages.fetch_add(1, Ordering::SeqCst);
        let body =
            serde_json::to_vec(&serde_json::json!({"name": list["name"], "tags": tags})).unwrap();
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{link}Connection: close\r\n\r\n",
            body.len()
        );
        client.write_all(head.as_bytes()).await?;
        client.write_all(&body).await?;
        client.shutdown().await
    }
}

async fn discard(client: &mut TcpStream, mut length: u64) -> std::io::Result<()> {
    let mut buffer = vec![0u8; 64 * 1024];
    while length > 0 {
        let want = buffer.len().min(length as usize);
        let n = client.read(&mut buffer[..want]).await?;
        if n == 0 {
            break;
        }
        length -= n as u64;
    }
    Ok(())
}

/// `size` pseudo-random (incompressible) bytes in a file; returns its `sha256:` digest.
fn random_file(path: &Path, size: u64, seed: u64) -> String {
    let mut state = seed | 1;
    let mut hasher = Sha256::new();
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let mut block = vec![0u8; MIB as usize];
    for _ in 0..size / MIB {
        for word in block.chunks_mut(8) {
            // xorshift64
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        hasher.update(&block);
        std::io::Write::write_all(&mut file, &block).unwrap();
    }
    std::io::Write::flush(&mut file).unwrap();
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

fn policy(resume_dir: &Path, chunk: u64, timeout: Duration) -> UploadPolicy {
    UploadPolicy {
        chunk_bytes: chunk,
        chunk_timeout: timeout,
        attempts: 4,
        first_backoff: Duration::from_millis(20),
        resume_dir: Some(resume_dir.to_path_buf()),
    }
}

/// A one-layer image manifest for `layer` (with its config blob uploaded); returns the
/// registry's digest for it and ours.
async fn push_manifest(
    registry: &Registry,
    repository: &str,
    layer: (&str, u64),
) -> (String, String) {
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer.0]},
        "config": {}
    }))
    .unwrap();
    let config_digest = format!("sha256:{}", hex::encode(Sha256::digest(&config)));
    let config_source = BlobSource::Memory(config.clone().into());
    registry
        .upload_blob(repository, &config_digest, &config_source, &|_| {})
        .await
        .unwrap();
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer.0, "size": layer.1}]
    }))
    .unwrap();
    let ours = format!("sha256:{}", hex::encode(Sha256::digest(&manifest)));
    let theirs = registry
        .put_manifest(
            repository,
            "big",
            "application/vnd.oci.image.manifest.v1+json",
            manifest.into(),
        )
        .await
        .unwrap();
    (theirs, ours)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_300_mb_layer_pushes_through_errors_cuts_and_stalls() {
    let s = standins();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layer");
    let size = 300 * MIB;
    let digest = random_file(&path, size, 0x5eed);
    let proxy = FaultProxy::start(&s.registry).await;
    // PATCH 1: a 500; PATCH 2: cut mid-chunk (Distribution then drops the session, so the
    // blob starts again); PATCH 4: a 429 with Retry-After; PATCH 6: no answer until the
    // client's chunk timeout.
    proxy.fault(1, Fault::Status(500));
    proxy.fault(2, Fault::Cut);
    proxy.fault(4, Fault::Status(429));
    proxy.fault(6, Fault::Stall);
    let registry = proxy.registry(policy(dir.path(), 32 * MIB, Duration::from_secs(4)));
    let repository = "push-faults";
    let held = Arc::new(AtomicU64::new(0));
    let shown = held.clone();
    let report = registry
        .upload_blob(
            repository,
            &digest,
            &BlobSource::file(&path).unwrap(),
            &move |n| shown.store(n, Ordering::SeqCst),
        )
        .await
        .expect("the upload survives the faults");
    assert_eq!(
        held.load(Ordering::SeqCst),
        size,
        "progress reached the end"
    );
    assert_eq!(report.restarts, 1, "{report:?}");
    assert_eq!(report.retries, 4, "{report:?}");
    assert_eq!(proxy.stalled.load(Ordering::SeqCst), 1);
    // Every byte once, plus the chunk before the cut again (the session was dropped), plus
    // half the cut chunk that reached the registry.
    assert_eq!(
        proxy.forwarded.load(Ordering::SeqCst),
        size + 32 * MIB + 16 * MIB,
        "{report:?}"
    );
    assert!(
        std::fs::read_dir(dir.path()).unwrap().all(|e| !e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".upload")),
        "a finished upload leaves no session record"
    );
    // The registry has the whole layer under its digest, and an image of it.
    let direct = Registry::new(&s.registry, "AWS", ECR_PASSWORD, false).unwrap();
    assert!(direct.has_blob(repository, &digest).await.unwrap());
    let (theirs, ours) = push_manifest(&registry, repository, (&digest, size)).await;
    assert_eq!(theirs, ours, "the registry stored the manifest as sent");
    assert_eq!(
        direct.manifest_digest(repository, "big").await.unwrap(),
        Some(ours)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_push_goes_on_without_sending_finished_chunks_again() {
    let s = standins();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layer");
    let size = 96 * MIB;
    let digest = random_file(&path, size, 0xdead);
    let proxy = FaultProxy::start(&s.registry).await;
    // The fourth chunk is taken in and never answered: the run is killed while it waits.
    proxy.fault(3, Fault::Stall);
    let chunk = 16 * MIB;
    let registry = proxy.registry(policy(dir.path(), chunk, Duration::from_secs(600)));
    let repository = "push-resume";
    let source = BlobSource::file(&path).unwrap();
    let first = {
        let (registry, digest, source) = (registry.clone(), digest.clone(), source.clone());
        tokio::spawn(async move {
            registry
                .upload_blob(repository, &digest, &source, &|_| {})
                .await
        })
    };
    for _ in 0..600 {
        if proxy.stalled.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        proxy.stalled.load(Ordering::SeqCst),
        1,
        "the fourth chunk was sent"
    );
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    let before = proxy.forwarded.load(Ordering::SeqCst);
    assert_eq!(before, 3 * chunk, "three chunks reached the registry");

    // A new run (a new client, the same record directory) picks the session up.
    let again = proxy.registry(policy(dir.path(), chunk, Duration::from_secs(60)));
    let report = again
        .upload_blob(repository, &digest, &source, &|_| {})
        .await
        .unwrap();
    assert_eq!(report.resumed_from, Some(3 * chunk), "{report:?}");
    assert_eq!(report.sent_bytes, size - 3 * chunk, "{report:?}");
    assert_eq!(
        proxy.forwarded.load(Ordering::SeqCst) - before,
        size - 3 * chunk,
        "only the chunks the registry lacked were sent"
    );
    let direct = Registry::new(&s.registry, "AWS", ECR_PASSWORD, false).unwrap();
    assert!(direct.has_blob(repository, &digest).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_link_is_timed_per_chunk_and_a_dead_one_says_where_it_stopped() {
    let s = standins();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("layer");
    let size = 16 * MIB;
    let digest = random_file(&path, size, 0x51_0e);
    let source = BlobSource::file(&path).unwrap();

    // 4 MB/s: the whole blob takes about 4 s, over the 2.5 s a chunk may take; each 2 MiB
    // chunk takes about half a second.
    let proxy = FaultProxy::start(&s.registry).await;
    proxy.rate.store(4_000_000, Ordering::SeqCst);
    let registry = proxy.registry(policy(dir.path(), 2 * MIB, Duration::from_millis(2500)));
    let started = std::time::Instant::now();
    let report = registry
        .upload_blob("push-slow", &digest, &source, &|_| {})
        .await
        .expect("a slow link is not a failure");
    assert!(
        started.elapsed() > Duration::from_millis(2500),
        "the proxy throttled"
    );
    assert_eq!((report.retries, report.restarts), (0, 0), "{report:?}");

    // A link too slow for one chunk in its time: every try of the first chunk times out and
    // the error says what happened and how to go on.
    let other = tempfile::tempdir().unwrap();
    let other_path = other.path().join("layer");
    let other_digest = random_file(&other_path, 8 * MIB, 0xbad);
    let crawl = FaultProxy::start(&s.registry).await;
    crawl.rate.store(1_000_000, Ordering::SeqCst);
    let registry = crawl.registry(policy(other.path(), 8 * MIB, Duration::from_millis(1500)));
    let error = registry
        .upload_blob(
            "push-slow",
            &other_digest,
            &BlobSource::file(&other_path).unwrap(),
            &|_| {},
        )
        .await
        .unwrap_err();
    let message = format!("{error:#}");
    assert!(message.contains("4 attempts in a row failed"), "{message}");
    assert!(message.contains("took over 1.5 s"), "{message}");
    assert!(message.contains("run deploy again"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tag_listing_is_read_page_by_page_and_delete_all_removes_every_page() {
    let s = standins();
    let repository = "push-pages";
    let direct = Registry::new(&s.registry, "AWS", ECR_PASSWORD, false).unwrap();
    direct.delete_all(repository).await.unwrap();
    let layer = b"one small layer".to_vec();
    let digest = format!("sha256:{}", hex::encode(Sha256::digest(&layer)));
    direct
        .upload_blob(
            repository,
            &digest,
            &BlobSource::Memory(layer.clone().into()),
            &|_| {},
        )
        .await
        .unwrap();
    let (manifest, _) = push_manifest(&direct, repository, (&digest, layer.len() as u64)).await;
    let mut expected = vec!["big".to_string()];
    for n in 0..6 {
        let tag = format!("page-{n}");
        assert!(direct.add_tag(repository, &manifest, &tag).await.unwrap());
        expected.push(tag);
    }
    expected.sort();
    // In lexical order, whatever order the registry's storage lists them in.
    assert_eq!(direct.tags(repository).await.unwrap(), expected);

    // A registry that pages on its own (two tags a page: four pages), and one asked for
    // three a page (three pages): every tag, each page found through the last one's `Link`.
    let proxy = FaultProxy::start(&s.registry).await;
    proxy.page_tags(2);
    let through = Registry::new(&proxy.address, "AWS", ECR_PASSWORD, false).unwrap();
    assert_eq!(through.tags(repository).await.unwrap(), expected);
    assert_eq!(proxy.tag_pages.load(Ordering::SeqCst), 4);
    let asked = Registry::new(&proxy.address, "AWS", ECR_PASSWORD, false)
        .unwrap()
        .with_tag_page(3);
    assert_eq!(asked.tags(repository).await.unwrap(), expected);
    assert_eq!(proxy.tag_pages.load(Ordering::SeqCst), 4 + 3);

    // delete_all finds the image under every page's tags, and removes it once.
    assert_eq!(
        through.delete_all(repository).await.unwrap(),
        vec![manifest],
        "one image under seven tags"
    );
    assert!(direct.tags(repository).await.unwrap().is_empty());
}

/// An image manifest for `arch` over one small layer, tagged `arch`; returns its digest.
async fn small_image(registry: &Registry, repository: &str, arch: &str) -> String {
    let layer = format!("layer of {arch}").into_bytes();
    let layer_digest = format!("sha256:{}", hex::encode(Sha256::digest(&layer)));
    let config = serde_json::to_vec(&serde_json::json!({
        "architecture": arch, "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
        "config": {}
    }))
    .unwrap();
    let config_digest = format!("sha256:{}", hex::encode(Sha256::digest(&config)));
    for (digest, bytes) in [(&layer_digest, &layer), (&config_digest, &config)] {
        registry
            .upload_blob(
                repository,
                digest,
                &BlobSource::Memory(bytes.clone().into()),
                &|_| {},
            )
            .await
            .unwrap();
    }
    let manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar",
                    "digest": layer_digest, "size": layer.len()}]
    }))
    .unwrap();
    registry
        .put_manifest(
            repository,
            arch,
            "application/vnd.oci.image.manifest.v1+json",
            manifest.into(),
        )
        .await
        .unwrap()
}

/// Newer Docker pushes an OCI index (the image beside an attestation); Lambda runs only a
/// single-architecture manifest. Read back from the real registry, an index resolves to the
/// child for the function's architecture, a plain manifest to itself, and an index without
/// that architecture is refused, naming what it holds.
#[tokio::test(flavor = "multi_thread")]
async fn an_index_in_the_registry_resolves_to_the_image_for_the_architecture() {
    use ummatics_sentiment::lambda::Arch;
    let s = standins();
    let registry = Registry::new(&s.registry, "AWS", ECR_PASSWORD, false).unwrap();
    let repository = &format!("index-{}", std::process::id());
    let amd64 = small_image(&registry, repository, "amd64").await;
    let arm64 = small_image(&registry, repository, "arm64").await;
    let entry = |digest: &str, arch: &str, os: &str| {
        serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest, "size": 1, "platform": {"architecture": arch, "os": os}})
    };
    let index = |entries: Vec<serde_json::Value>| {
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "manifests": entries,
        }))
        .unwrap()
    };
    let oci_index = "application/vnd.oci.image.index.v1+json";
    // The image and an attestation (which docker buildx pushes as unknown/unknown).
    registry
        .put_manifest(
            repository,
            "multi",
            oci_index,
            index(vec![
                entry(&arm64, "unknown", "unknown"),
                entry(&arm64, "arm64", "linux"),
                entry(&amd64, "amd64", "linux"),
            ])
            .into(),
        )
        .await
        .unwrap();
    for (arch, expected) in [(Arch::X86_64, &amd64), (Arch::Arm64, &arm64)] {
        assert_eq!(
            &registry
                .image_manifest_for(repository, "multi", arch)
                .await
                .unwrap(),
            expected
        );
    }
    assert_eq!(
        registry
            .image_manifest_for(repository, "amd64", Arch::X86_64)
            .await
            .unwrap(),
        amd64
    );
    registry
        .put_manifest(
            repository,
            "armonly",
            oci_index,
            index(vec![entry(&arm64, "arm64", "linux")]).into(),
        )
        .await
        .unwrap();
    let e = registry
        .image_manifest_for(repository, "armonly", Arch::X86_64)
        .await
        .unwrap_err();
    assert!(
        format!("{e:#}").contains("no linux/amd64 image (it holds linux/arm64)"),
        "{e:#}"
    );
}

/// A small image of the daemonless builder's shape (pretend binary, two model files), unique
/// to `seed`.
fn pretend_image(seed: u64) -> ummatics_sentiment::image::oci::OciImage {
    use ummatics_sentiment::image::Bootstrap;
    use ummatics_sentiment::models::{ModelFile, ModelFiles};
    let bytes = |n: usize, salt: u64| -> Vec<u8> {
        let mut state = (seed ^ salt) | 1;
        (0..n)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect()
    };
    let bootstrap = Bootstrap {
        path: "bootstrap".into(),
        bytes: bytes(300_000, 1),
        build: None,
    };
    let model = ModelFiles {
        source: "test".into(),
        files: vec![
            ModelFile {
                name: "model.onnx".into(),
                bytes: bytes(200_000, 2),
            },
            ModelFile {
                name: "config.json".into(),
                bytes: b"{}".to_vec(),
            },
        ],
    };
    ummatics_sentiment::image::oci::build(
        &bootstrap,
        &model,
        ummatics_sentiment::lambda::Arch::X86_64,
    )
    .unwrap()
}

/// The bytes of an image's blobs (what a push that sends each once forwards).
fn blob_bytes(image: &ummatics_sentiment::image::oci::OciImage) -> u64 {
    image
        .blobs()
        .iter()
        .map(|(_, b)| b.bytes.len() as u64)
        .sum()
}

/// The image's manifest is in the registry under its tag, with its digest.
async fn assert_landed(
    registry: &Registry,
    repository: &str,
    image: &ummatics_sentiment::image::oci::OciImage,
) {
    let stored = registry
        .manifest_digest(repository, &image.tag())
        .await
        .unwrap();
    assert_eq!(stored.as_deref(), Some(image.digest()), "{repository}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_refused_for_a_blob_just_uploaded_is_sent_again_after_checking_it() {
    use ummatics_sentiment::image::oci;
    use ummatics_sentiment::output::Progress;
    let s = standins();
    let dir = tempfile::tempdir().unwrap();
    let direct = Registry::new(&s.registry, "AWS", ECR_PASSWORD, false).unwrap();
    let progress = Progress::new();
    let step = progress.step("push");
    let seed = u64::from(std::process::id());

    // The registry did not see a blob it has (another push was committing it): the blob is
    // checked, found, not sent again; the manifest goes again and lands.
    let image = pretend_image(seed);
    let repository = "push-race-seen";
    let proxy = FaultProxy::start(&s.registry).await;
    let code = image.layers[0].blob.digest.clone();
    proxy.fault_manifests(ManifestFault::Refuse(code.clone()), 2);
    let registry = proxy.registry(policy(dir.path(), 8 * MIB, Duration::from_secs(60)));
    let blobs = oci::push(&image, &registry, repository, &step, &progress)
        .await
        .expect("a manifest refused for a blob the registry has is sent again");
    assert_eq!(proxy.manifest_puts.load(Ordering::SeqCst), 3);
    let sent = blob_bytes(&image);
    assert_eq!(
        proxy.forwarded.load(Ordering::SeqCst),
        sent,
        "nothing was uploaded twice"
    );
    assert!(blobs.iter().all(|b| b.uploaded), "{blobs:?}");
    assert_landed(&direct, repository, &image).await;

    // The registry lost a blob after its upload (deleted under the push): it is uploaded
    // again, and the manifest lands.
    let image = pretend_image(seed + 1);
    let repository = "push-race-lost";
    let proxy = FaultProxy::start(&s.registry).await;
    let weights = image.layers[1].blob.clone();
    proxy.fault_manifests(ManifestFault::DeleteBlob(weights.digest.clone()), 1);
    let registry = proxy.registry(policy(dir.path(), 8 * MIB, Duration::from_secs(60)));
    let blobs = oci::push(&image, &registry, repository, &step, &progress)
        .await
        .expect("a blob lost after its upload is uploaded again");
    assert_eq!(proxy.manifest_puts.load(Ordering::SeqCst), 2);
    let sent = blob_bytes(&image);
    assert_eq!(
        proxy.forwarded.load(Ordering::SeqCst),
        sent + weights.bytes.len() as u64,
        "the lost blob, and only it, went twice"
    );
    assert!(direct.has_blob(repository, &weights.digest).await.unwrap());
    assert_landed(&direct, repository, &image).await;
    assert!(blobs.iter().all(|b| b.uploaded), "{blobs:?}");

    // A registry that keeps refusing: the push stops after its attempts and says so.
    let image = pretend_image(seed + 2);
    let proxy = FaultProxy::start(&s.registry).await;
    proxy.fault_manifests(ManifestFault::Refuse(image.config.digest.clone()), 100);
    let registry = proxy.registry(policy(dir.path(), 8 * MIB, Duration::from_secs(60)));
    let error = oci::push(&image, &registry, "push-race-never", &step, &progress)
        .await
        .expect_err("a manifest refused every time is an error");
    let text = format!("{error:#}");
    assert!(
        text.contains("refused 4 times") && text.contains(&image.config.digest),
        "{text}"
    );
    assert_eq!(proxy.manifest_puts.load(Ordering::SeqCst), 4);
}
