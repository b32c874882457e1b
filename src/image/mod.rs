//! The function image: its inputs (a static `bootstrap`, checked as an ELF of the right
//! architecture, and the model files), and its two builders — the Docker engine from a
//! deterministic build context ([`docker`]), or no daemon at all, the OCI layers, config and
//! manifest written here ([`oci`]) — and where it goes: ECR ([`ecr`]: repository, login) and
//! the registry API ([`registry`]).

pub mod docker;
pub mod ecr;
pub mod oci;
pub mod registry;

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;
use sha2::{Digest, Sha256};

use ummatics_sentiment_function::build_info::BuildId;

use crate::lambda::Arch;
use crate::models::ModelFiles;

/// The image label with the function's version (OCI annotation keys).
pub const LABEL_VERSION: &str = "org.opencontainers.image.version";
/// The image label with the commit the function was built from.
pub const LABEL_REVISION: &str = "org.opencontainers.image.revision";

/// `templates/Dockerfile`, built into the binary so deploy works from anywhere.
pub const DOCKERFILE: &str = include_str!("../../templates/Dockerfile");

/// The function binary that goes into the image.
#[derive(Clone)]
pub struct Bootstrap {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    /// The build it says it is (version and commit), when it is ours.
    pub build: Option<BuildId>,
}

impl std::fmt::Debug for Bootstrap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Bootstrap({}, {} bytes, {:?})",
            self.path.display(),
            self.bytes.len(),
            self.build
        )
    }
}

impl Bootstrap {
    /// A binary's bytes, with the build it names.
    pub fn new(path: PathBuf, bytes: Vec<u8>) -> Bootstrap {
        let build = BuildId::find_in(&bytes);
        Bootstrap { path, bytes, build }
    }

    /// Hex SHA-256 of the binary.
    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(&self.bytes))
    }

    /// The image config's labels: the OCI version and revision of the function inside.
    pub fn labels(&self) -> std::collections::BTreeMap<String, String> {
        let mut labels = std::collections::BTreeMap::new();
        if let Some(build) = &self.build {
            labels.insert(LABEL_VERSION.to_string(), build.version.clone());
            labels.insert(LABEL_REVISION.to_string(), build.commit.clone());
        }
        labels
    }

    /// Reads a bootstrap binary and checks it can run as a Lambda custom runtime on `arch`
    /// in an image without a libc (unless the base image brings one).
    pub fn read(path: &Path, arch: Arch, base_has_libc: bool) -> Result<Bootstrap> {
        let bytes = std::fs::read(path).with_context(|| {
            format!(
                "cannot read the bootstrap binary {}; build it with `cargo build --release \
                 --target {} -p ummatics-sentiment-function`",
                path.display(),
                arch.rust_target()
            )
        })?;
        let elf = ElfInfo::parse(&bytes)
            .with_context(|| format!("{} is not a Linux executable", path.display()))?;
        if elf.arch != arch {
            bail!(
                "{} is built for {}, but the function is {}: pass --arch {} or a binary built \
                 for --target {}",
                path.display(),
                elf.arch.lambda_name(),
                arch.lambda_name(),
                elf.arch.lambda_name(),
                arch.rust_target()
            );
        }
        if elf.dynamic && !base_has_libc {
            bail!(
                "{} is dynamically linked, and a FROM scratch image has no libc to load it: \
                 build a static binary (--target {}) or pass --base-image with a libc",
                path.display(),
                arch.rust_target()
            );
        }
        Ok(Bootstrap::new(path.to_path_buf(), bytes))
    }
}

/// What the ELF header says about a binary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ElfInfo {
    pub arch: Arch,
    /// Has a program interpreter (PT_INTERP): needs a dynamic loader and libc.
    pub dynamic: bool,
}

impl ElfInfo {
    /// Reads the ELF64 little-endian header and program headers (all Lambda runs).
    pub fn parse(bytes: &[u8]) -> Result<ElfInfo> {
        let u16_at = |at: usize| -> Result<u16> {
            Ok(u16::from_le_bytes(
                bytes
                    .get(at..at + 2)
                    .context("truncated ELF header")?
                    .try_into()?,
            ))
        };
        let u32_at = |at: usize| -> Result<u32> {
            Ok(u32::from_le_bytes(
                bytes
                    .get(at..at + 4)
                    .context("truncated ELF header")?
                    .try_into()?,
            ))
        };
        let u64_at = |at: usize| -> Result<u64> {
            Ok(u64::from_le_bytes(
                bytes
                    .get(at..at + 8)
                    .context("truncated ELF header")?
                    .try_into()?,
            ))
        };
        if bytes.get(..4) != Some(b"\x7fELF".as_slice()) {
            bail!("no ELF magic number");
        }
        if bytes.get(4) != Some(&2) || bytes.get(5) != Some(&1) {
            bail!("not a 64-bit little-endian ELF file");
        }
        let arch = match u16_at(0x12)? {
            0x3e => Arch::X86_64,
            0xb7 => Arch::Arm64,
            other => bail!("ELF machine {other:#x} is neither x86_64 nor aarch64"),
        };
        let phoff = u64_at(0x20)? as usize;
        let phentsize = u16_at(0x36)? as usize;
        let phnum = u16_at(0x38)? as usize;
        let mut dynamic = false;
        for i in 0..phnum {
            const PT_INTERP: u32 = 3;
            if u32_at(phoff + i * phentsize)? == PT_INTERP {
                dynamic = true;
            }
        }
        Ok(ElfInfo { arch, dynamic })
    }
}

/// A tar whose bytes depend only on `files` (path, bytes, mode): entries sorted by path, mtime
/// 0, owner root. With `with_dirs`, each file's parent directories get entries of their own
/// (mode 0755), as image layers want.
pub fn deterministic_tar(files: &[(String, &[u8], u32)], with_dirs: bool) -> Result<Vec<u8>> {
    let mut entries: Vec<(String, Option<&[u8]>, u32)> = Vec::new();
    for (path, bytes, mode) in files {
        if with_dirs {
            for (i, _) in path.match_indices('/') {
                let dir = &path[..=i];
                if !entries.iter().any(|(p, _, _)| p == dir) {
                    entries.push((dir.to_string(), None, 0o755));
                }
            }
        }
        entries.push((path.clone(), Some(*bytes), *mode));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut builder = tar::Builder::new(Vec::new());
    builder.mode(tar::HeaderMode::Deterministic);
    for (path, bytes, mode) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_mode(mode);
        header.set_mtime(0);
        header.set_uid(0);
        header.set_gid(0);
        let bytes = match bytes {
            None => {
                header.set_entry_type(tar::EntryType::Directory);
                &[][..]
            }
            Some(bytes) => {
                header.set_entry_type(tar::EntryType::Regular);
                bytes
            }
        };
        header.set_size(bytes.len() as u64);
        builder
            .append_data(&mut header, &path, bytes)
            .with_context(|| format!("cannot add {path} to a tar"))?;
    }
    builder.into_inner().context("cannot finish a tar")
}

/// The build context: a tar of the Dockerfile, `bootstrap` and `model/`, with sorted entries,
/// mtime 0 and root ownership, so equal inputs give equal bytes and an equal digest.
#[derive(Debug, Clone, Serialize)]
pub struct BuildContext {
    #[serde(skip)]
    pub tar: Vec<u8>,
    /// Hex SHA-256 of `tar` and the build arguments (base image, platform): the image tag, so
    /// "already pushed" is a registry lookup.
    pub digest: String,
    pub bytes: u64,
    /// The image's labels (the function's version and commit), given to the engine's build:
    /// they follow from the bootstrap in `tar`, so the digest already covers them.
    #[serde(skip)]
    pub labels: std::collections::BTreeMap<String, String>,
}

impl BuildContext {
    pub fn new(
        bootstrap: &Bootstrap,
        model: &ModelFiles,
        base_image: &str,
        arch: Arch,
    ) -> Result<BuildContext> {
        let mut files: Vec<(String, &[u8], u32)> = vec![
            ("Dockerfile".into(), DOCKERFILE.as_bytes(), 0o644),
            ("bootstrap".into(), &bootstrap.bytes, 0o755),
        ];
        for file in &model.files {
            files.push((format!("model/{}", file.name), &file.bytes, 0o644));
        }
        // The engine makes the directories itself: the context holds files only.
        let tar = deterministic_tar(&files, false).context("cannot write the build context")?;
        let mut hasher = Sha256::new();
        hasher.update(&tar);
        hasher.update(format!(
            "\0base-image={base_image}\0platform=linux/{}",
            arch.oci_name()
        ));
        let digest = hex::encode(hasher.finalize());
        Ok(BuildContext {
            labels: bootstrap.labels(),
            bytes: tar.len() as u64,
            tar,
            digest,
        })
    }

    /// The image tag: the context digest (shortened: tags are for people, the digest of the
    /// pushed manifest is what the stack references).
    pub fn tag(&self) -> String {
        format!("ctx-{}", &self.digest[..32])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::ModelFile;

    fn model() -> ModelFiles {
        ModelFiles {
            source: "test".into(),
            files: vec![
                ModelFile {
                    name: "model.onnx".into(),
                    bytes: vec![1, 2, 3],
                },
                ModelFile {
                    name: "config.json".into(),
                    bytes: b"{}".to_vec(),
                },
                ModelFile {
                    name: "tokenizer.json".into(),
                    bytes: b"{}".to_vec(),
                },
            ],
        }
    }

    #[test]
    fn context_is_deterministic_and_follows_its_inputs() {
        let bootstrap = Bootstrap {
            build: None,
            path: "bootstrap".into(),
            bytes: vec![0x7f, b'E', b'L', b'F'],
        };
        let a = BuildContext::new(&bootstrap, &model(), "scratch", Arch::X86_64).unwrap();
        let b = BuildContext::new(&bootstrap, &model(), "scratch", Arch::X86_64).unwrap();
        assert_eq!(a.digest, b.digest);
        assert_eq!(a.tar, b.tar);
        let mut other = model();
        other.files[0].bytes.push(4);
        let c = BuildContext::new(&bootstrap, &other, "scratch", Arch::X86_64).unwrap();
        assert_ne!(a.digest, c.digest);
        // Another base image is another image, even from the same files.
        let d = BuildContext::new(&bootstrap, &model(), "alpine:3.20", Arch::X86_64).unwrap();
        assert_eq!(a.tar, d.tar);
        assert_ne!(a.digest, d.digest);
        assert!(a.tag().starts_with("ctx-") && a.tag().len() == 36);

        let mut archive = tar::Archive::new(a.tar.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().display().to_string())
            .collect();
        assert_eq!(
            names,
            [
                "Dockerfile",
                "bootstrap",
                "model/config.json",
                "model/model.onnx",
                "model/tokenizer.json"
            ]
        );
    }

    #[test]
    fn model_check_names_what_is_missing() {
        let mut m = model();
        m.files
            .retain(|f| f.name != "tokenizer.json" && f.name != "config.json");
        let err = m.check().unwrap_err().to_string();
        assert!(
            err.contains("lacks config.json, tokenizer.json (or vocab.txt):"),
            "{err}"
        );
    }

    #[test]
    fn elf_header_tells_arch_and_linking() {
        // This test binary: x86_64 (or aarch64) and dynamically linked against glibc.
        let me = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let info = ElfInfo::parse(&me).unwrap();
        assert_eq!(info.arch, Arch::host());
        assert_eq!(info.dynamic, cfg!(target_env = "gnu"));
        assert!(ElfInfo::parse(b"#!/bin/sh\n").is_err());
        assert!(ElfInfo::parse(b"\x7fELF\x02\x01").is_err());
    }
}
