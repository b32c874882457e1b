//! The daemonless builder: the image written by hand — a layer for the binary and one for the
//! model (a code change never re-pushes the weights), deterministic tars (sorted entries, mtime
//! 0, root-owned), gzip without a timestamp, the image config and the manifest — so the same
//! binary and model give the same manifest digest on every build and every machine — and its
//! push ([`push`]): the blobs the registry lacks, then the manifest.
//!
//! Byte-identical inputs are the caller's part: the same `bootstrap` comes from the same
//! `Cargo.lock`, toolchain and target, built with `--remap-path-prefix` (see README).

use std::io::Write;

use anyhow::{bail, Context, Result};
use flate2::write::GzEncoder;
use flate2::{Compression, GzBuilder};
use serde::Serialize;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::registry::{BlobSource, BlobsUnknown, Registry, UploadReport};
use super::{deterministic_tar, Bootstrap};
use crate::lambda::Arch;
use crate::models::ModelFiles;
use crate::output::{human_bytes, Progress, Step};

pub const MANIFEST_TYPE: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const CONFIG_TYPE: &str = "application/vnd.docker.container.image.v1+json";
pub const LAYER_TYPE: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Where things live in the image (the same paths as `templates/Dockerfile`).
pub const BOOTSTRAP_PATH: &str = "var/runtime/bootstrap";
pub const MODEL_DIR: &str = "var/task/model";

/// Content-addressed bytes.
#[derive(Clone)]
pub struct Blob {
    pub media_type: &'static str,
    /// Shared, so that uploads send views of it, never copies.
    pub bytes: bytes::Bytes,
    /// `sha256:<hex>`
    pub digest: String,
}

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({} bytes)", self.digest, self.bytes.len())
    }
}

impl Blob {
    fn new(media_type: &'static str, bytes: Vec<u8>) -> Blob {
        let digest = sha256(&bytes);
        Blob {
            media_type,
            bytes: bytes.into(),
            digest,
        }
    }
}

pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// One layer: the gzip blob and the digest of its uncompressed tar (the config's diff_id).
#[derive(Debug, Clone)]
pub struct Layer {
    pub name: &'static str,
    pub blob: Blob,
    pub diff_id: String,
}

/// A whole image, ready to push.
#[derive(Debug, Clone)]
pub struct OciImage {
    pub layers: Vec<Layer>,
    pub config: Blob,
    pub manifest: Blob,
}

/// What the report shows per blob.
#[derive(Debug, Clone, Serialize)]
pub struct BlobReport {
    pub name: String,
    pub digest: String,
    pub bytes: u64,
    /// Sent by this push (false: the registry had it).
    pub uploaded: bool,
    /// How the upload went (resumed, retried), when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upload: Option<crate::image::registry::UploadReport>,
}

impl OciImage {
    /// The manifest digest: what the stack references.
    pub fn digest(&self) -> &str {
        &self.manifest.digest
    }

    /// A tag for people (the digest is the reference).
    pub fn tag(&self) -> String {
        format!(
            "oci-{}",
            &self.manifest.digest["sha256:".len().."sha256:".len() + 32]
        )
    }

    /// Layers then config: the blobs a push uploads before the manifest.
    pub fn blobs(&self) -> Vec<(&str, &Blob)> {
        let mut all: Vec<(&str, &Blob)> = self.layers.iter().map(|l| (l.name, &l.blob)).collect();
        all.push(("config", &self.config));
        all
    }
}

/// gzip with no file name and mtime 0 (GzBuilder's defaults), so equal tars compress equally.
fn gzip(bytes: &[u8]) -> Result<Vec<u8>> {
    let mut encoder: GzEncoder<Vec<u8>> = GzBuilder::new().write(Vec::new(), Compression::new(6));
    encoder.write_all(bytes)?;
    encoder.finish().context("cannot gzip a layer")
}

fn layer(name: &'static str, files: &[(String, &[u8], u32)]) -> Result<Layer> {
    let tar = deterministic_tar(files, true)?;
    let diff_id = sha256(&tar);
    Ok(Layer {
        name,
        blob: Blob::new(LAYER_TYPE, gzip(&tar)?),
        diff_id,
    })
}

/// Writes the image: bootstrap layer, model layer, config, manifest.
pub fn build(bootstrap: &Bootstrap, model: &ModelFiles, arch: Arch) -> Result<OciImage> {
    let unpacked = bootstrap.bytes.len() as u64
        + model
            .files
            .iter()
            .map(|f| f.bytes.len() as u64)
            .sum::<u64>();
    crate::lambda::check_image_size(unpacked)?;
    let code = layer(
        "bootstrap layer",
        &[(
            BOOTSTRAP_PATH.to_string(),
            bootstrap.bytes.as_slice(),
            0o755,
        )],
    )?;
    let model_files: Vec<(String, &[u8], u32)> = model
        .files
        .iter()
        .map(|f| (format!("{MODEL_DIR}/{}", f.name), f.bytes.as_slice(), 0o644))
        .collect();
    let weights = layer("model layer", &model_files)?;
    let config = json!({
        "architecture": arch.oci_name(),
        "os": "linux",
        "config": {
            "Entrypoint": [format!("/{BOOTSTRAP_PATH}")],
            "Env": [
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                "LAMBDA_TASK_ROOT=/var/task",
                format!("UMMATICS_MODEL_DIR=/{MODEL_DIR}"),
            ],
            "Labels": bootstrap.labels(),
        },
        "rootfs": {
            "type": "layers",
            "diff_ids": [code.diff_id, weights.diff_id],
        },
    });
    let config = Blob::new(CONFIG_TYPE, serde_json::to_vec(&config)?);
    let descriptor =
        |b: &Blob| json!({"mediaType": b.media_type, "size": b.bytes.len(), "digest": b.digest});
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": descriptor(&config),
        "layers": [descriptor(&code.blob), descriptor(&weights.blob)],
    });
    let manifest = Blob::new(MANIFEST_TYPE, serde_json::to_vec(&manifest)?);
    Ok(OciImage {
        layers: vec![code, weights],
        config,
        manifest,
    })
}

/// How many times a manifest is sent when the registry says a blob it references is unknown.
const MANIFEST_ATTEMPTS: usize = 4;

/// The daemonless push: every blob the registry lacks, then the manifest, which must keep its
/// digest. A manifest refused for an unknown blob (the registry lost it, or another push of
/// the same blob was committing it at that moment) is sent again after checking that blob:
/// uploaded again when it is missing, waited for (with backoff) when it is there.
pub async fn push(
    image: &OciImage,
    registry: &Registry,
    repository: &str,
    step: &Step,
    progress: &Progress,
) -> Result<Vec<BlobReport>> {
    let mut blobs = Vec::new();
    for (name, blob) in image.blobs() {
        let upload = if registry.has_blob(repository, &blob.digest).await? {
            progress.line(format!("{name} {} already in the registry", blob.digest));
            None
        } else {
            Some(upload(registry, repository, name, blob, step, progress).await?)
        };
        blobs.push(BlobReport {
            name: name.to_string(),
            digest: blob.digest.clone(),
            bytes: blob.bytes.len() as u64,
            uploaded: upload.is_some(),
            upload,
        });
    }
    let mut delays = registry.policy().backoff();
    let mut attempt = 1;
    let digest = loop {
        let refused = match registry
            .put_manifest(
                repository,
                &image.tag(),
                image.manifest.media_type,
                image.manifest.bytes.clone(),
            )
            .await
        {
            Ok(digest) => break digest,
            Err(error) => error,
        };
        let Some(unknown) = refused.downcast_ref::<BlobsUnknown>().cloned() else {
            return Err(refused);
        };
        let delay = delays.next().filter(|_| attempt < MANIFEST_ATTEMPTS);
        let Some(delay) = delay else {
            return Err(refused.context(format!(
                "the manifest was refused {attempt} times for blobs this push uploaded \
                 (checked and sent again each time): push again, and if it keeps failing ask \
                 the registry's operator whether it keeps what it is sent"
            )));
        };
        attempt += 1;
        for (name, blob) in image.blobs() {
            if !unknown.names(&blob.digest) {
                continue;
            }
            if registry.has_blob(repository, &blob.digest).await? {
                progress.line(format!(
                    "the registry did not see {name} {} when it checked the manifest, but has \
                     it now (another push of it at the same moment?): sending the manifest again",
                    blob.digest
                ));
            } else {
                progress.line(format!(
                    "the registry lost {name} {} after it was uploaded: uploading it again",
                    blob.digest
                ));
                let again = upload(registry, repository, name, blob, step, progress).await?;
                if let Some(report) = blobs.iter_mut().find(|r| r.digest == blob.digest) {
                    report.uploaded = true;
                    report.upload = Some(again);
                }
            }
        }
        tokio::time::sleep(delay).await;
    };
    if digest != image.digest() {
        bail!(
            "the registry stored the manifest as {digest}, not {}: it rewrote the image",
            image.digest()
        );
    }
    Ok(blobs)
}

/// One blob uploaded, with its progress shown.
async fn upload(
    registry: &Registry,
    repository: &str,
    name: &str,
    blob: &Blob,
    step: &Step,
    progress: &Progress,
) -> Result<UploadReport> {
    let size = human_bytes(blob.bytes.len() as u64);
    step.set(format!("uploading {name} ({size})"));
    let source = BlobSource::Memory(blob.bytes.clone());
    let shown = |done: u64| step.set(format!("uploading {name}: {} of {size}", human_bytes(done)));
    let report = registry
        .upload_blob(repository, &blob.digest, &source, &shown)
        .await?;
    progress.line(format!(
        "{name} {} uploaded ({size}{})",
        blob.digest,
        upload_notes(&report)
    ));
    Ok(report)
}

/// ", resumed at 120 MB, 2 chunks retried" — what an upload took beyond the plain path.
fn upload_notes(report: &UploadReport) -> String {
    let mut notes = String::new();
    if let Some(offset) = report.resumed_from.filter(|o| *o > 0) {
        notes.push_str(&format!(", resumed at {}", human_bytes(offset)));
    }
    if report.retries > 0 {
        notes.push_str(&format!(", {} chunk(s) retried", report.retries));
    }
    if report.restarts > 0 {
        notes.push_str(&format!(
            ", started again {} time(s) (the registry dropped the session)",
            report.restarts
        ));
    }
    notes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ModelFile;

    fn inputs(weights: &[u8]) -> (Bootstrap, ModelFiles) {
        (
            Bootstrap {
                build: None,
                path: "bootstrap".into(),
                bytes: b"\x7fELF pretend binary".to_vec(),
            },
            ModelFiles {
                source: "test".into(),
                files: vec![
                    ModelFile {
                        name: "model.onnx".into(),
                        bytes: weights.to_vec(),
                    },
                    ModelFile {
                        name: "config.json".into(),
                        bytes: b"{}".to_vec(),
                    },
                ],
            },
        )
    }

    #[test]
    fn same_inputs_same_digest_and_a_model_change_touches_only_the_model_layer() {
        let (b, m) = inputs(b"weights");
        let one = build(&b, &m, Arch::X86_64).unwrap();
        let two = build(&b, &m, Arch::X86_64).unwrap();
        assert_eq!(one.digest(), two.digest());
        assert_eq!(one.manifest.bytes, two.manifest.bytes);

        let (b2, m2) = inputs(b"other weights");
        let three = build(&b2, &m2, Arch::X86_64).unwrap();
        assert_eq!(one.layers[0].blob.digest, three.layers[0].blob.digest);
        assert_ne!(one.layers[1].blob.digest, three.layers[1].blob.digest);
        assert_ne!(one.digest(), three.digest());

        let arm = build(&b, &m, Arch::Arm64).unwrap();
        assert_eq!(one.layers[0].blob.digest, arm.layers[0].blob.digest);
        assert_ne!(one.config.digest, arm.config.digest);
        let config: serde_json::Value = serde_json::from_slice(&arm.config.bytes).unwrap();
        assert_eq!(config["architecture"], "arm64");
    }

    #[test]
    fn layers_hold_the_files_with_fixed_metadata() {
        let (b, m) = inputs(b"weights");
        let image = build(&b, &m, Arch::X86_64).unwrap();
        let gz = flate2::read::GzDecoder::new(&image.layers[1].blob.bytes[..]);
        let mut archive = tar::Archive::new(gz);
        let mut names = Vec::new();
        for entry in archive.entries().unwrap() {
            let entry = entry.unwrap();
            assert_eq!(entry.header().mtime().unwrap(), 0);
            assert_eq!(entry.header().uid().unwrap(), 0);
            names.push(entry.path().unwrap().display().to_string());
        }
        assert_eq!(
            names,
            [
                "var/",
                "var/task/",
                "var/task/model/",
                "var/task/model/config.json",
                "var/task/model/model.onnx"
            ]
        );
        // The config's diff_ids are the uncompressed layers' digests.
        let config: serde_json::Value = serde_json::from_slice(&image.config.bytes).unwrap();
        assert_eq!(
            config["rootfs"]["diff_ids"][1],
            image.layers[1].diff_id.as_str()
        );
        assert_eq!(config["config"]["Entrypoint"][0], "/var/runtime/bootstrap");
    }
}
