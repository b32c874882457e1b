//! The function this binary carries: a release of `ummatics-sentiment` holds the function's
//! static `bootstrap` for both Lambda architectures, so `deploy` needs no toolchain and no
//! checkout.
//!
//! The bootstraps are attached after linking (`scripts/carry.sh`), not compiled in: the CLI
//! and the function build side by side in one cargo run, and the same attach step serves the
//! release and the tests. The file is the executable, then the payload, then a fixed footer:
//!
//! ```text
//! [ELF executable][payload: a tar][20 ASCII digits: the payload's length][FOOTER_MAGIC]
//! ```
//!
//! The payload is an uncompressed tar holding `manifest.json` (the build's version and commit,
//! and for each architecture its file, its SHA-256 and size) and one xz file per architecture
//! (`xz -9`: a 36.6 MB release bootstrap becomes 7.3 MB; gzip -9 made 11.3). Loaders ignore bytes past an ELF's segments, so the binary runs as before;
//! `strip` drops them (then the binary says it carries no function).

use std::fmt;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use ummatics_sentiment_function::build_info::BuildId;

use crate::image::{Bootstrap, ElfInfo};
use crate::lambda::Arch;

/// The footer's last bytes.
pub const FOOTER_MAGIC: &[u8] = b"UMMATICS-CARRIED-FUNCTION-V1\n";

/// Digits of the payload length, before the magic.
const LENGTH_DIGITS: usize = 20;

/// The whole footer.
const FOOTER_LEN: usize = LENGTH_DIGITS + FOOTER_MAGIC.len();

/// A payload larger than this is refused (both compressed release bootstraps are ~15 MB).
const MAX_PAYLOAD: u64 = 512 << 20;

/// An unpacked bootstrap larger than this is refused (a release one is ~37 MB, a debug one of
/// the tests ~140 MB; Lambda's images are at most 10 GB, but no function of ours is near it).
const MAX_UNPACKED: u64 = 1 << 30;

/// The payload's `manifest.json`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Layout version of this file; 1.
    pub format: u32,
    pub version: String,
    pub commit: String,
    pub functions: Vec<ManifestEntry>,
}

/// One architecture's bootstrap in the payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// `x86_64` or `arm64` (Lambda's names).
    pub arch: String,
    /// The xz file in the payload.
    pub file: String,
    /// Hex SHA-256 of the uncompressed bootstrap.
    pub sha256: String,
    /// Size of the uncompressed bootstrap.
    pub bytes: u64,
}

/// The functions a binary carries.
#[derive(Debug, Clone)]
pub struct Carried {
    /// The binary they were read from.
    pub path: PathBuf,
    pub manifest: Manifest,
    /// File name → xz bytes.
    files: Vec<(String, Vec<u8>)>,
}

/// One carried bootstrap, unpacked and checked.
#[derive(Debug, Clone)]
pub struct CarriedFunction {
    pub arch: Arch,
    pub build: BuildId,
    pub sha256: String,
    pub bootstrap: Bootstrap,
}

impl fmt::Display for CarriedFunction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "carried {} (sha256:{})",
            self.build,
            &self.sha256[..12.min(self.sha256.len())]
        )
    }
}

impl Carried {
    /// The functions this running binary carries (`None` for a build without them, such as
    /// `cargo build`'s).
    pub fn this_binary() -> Result<Option<Carried>> {
        let exe = std::env::current_exe().context("cannot find this program's own file")?;
        Carried::read(&exe)
    }

    /// The functions the binary at `path` carries.
    pub fn read(path: &Path) -> Result<Option<Carried>> {
        let mut file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let len = file
            .metadata()
            .with_context(|| format!("cannot read {}", path.display()))?
            .len();
        if len < FOOTER_LEN as u64 {
            return Ok(None);
        }
        let mut footer = [0u8; FOOTER_LEN];
        file.seek(SeekFrom::Start(len - FOOTER_LEN as u64))
            .and_then(|_| file.read_exact(&mut footer))
            .with_context(|| format!("cannot read {}", path.display()))?;
        let Some(payload_len) = parse_footer(&footer) else {
            return Ok(None);
        };
        let damaged = || {
            format!(
                "{} is damaged: its carried function's footer names {payload_len} bytes that \
                 are not there; download the release again",
                path.display()
            )
        };
        if payload_len > MAX_PAYLOAD || payload_len > len - FOOTER_LEN as u64 {
            bail!(damaged());
        }
        let mut payload = vec![0u8; payload_len as usize];
        file.seek(SeekFrom::Start(len - FOOTER_LEN as u64 - payload_len))
            .and_then(|_| file.read_exact(&mut payload))
            .with_context(damaged)?;
        let carried = Carried::parse(path, &payload).with_context(|| {
            format!(
                "{} carries a function that cannot be read; download the release again",
                path.display()
            )
        })?;
        Ok(Some(carried))
    }

    /// Reads the payload tar: the manifest and the files it names.
    fn parse(path: &Path, payload: &[u8]) -> Result<Carried> {
        let mut manifest = None;
        let mut files = Vec::new();
        let mut archive = tar::Archive::new(payload);
        for entry in archive.entries().context("not a tar")? {
            let mut entry = entry.context("not a tar")?;
            let name = entry.path().context("a file name")?.display().to_string();
            let mut bytes = Vec::new();
            entry
                .read_to_end(&mut bytes)
                .with_context(|| format!("cannot read {name}"))?;
            if name == "manifest.json" {
                manifest = Some(
                    serde_json::from_slice::<Manifest>(&bytes)
                        .context("manifest.json is not a carried-function manifest")?,
                );
            } else {
                files.push((name, bytes));
            }
        }
        let manifest = manifest.context("no manifest.json")?;
        if manifest.format != 1 {
            bail!(
                "manifest format {} is newer than this reader (1)",
                manifest.format
            );
        }
        for entry in &manifest.functions {
            Arch::parse_lambda_name(&entry.arch)
                .with_context(|| format!("unknown architecture {:?}", entry.arch))?;
            if !files.iter().any(|(name, _)| *name == entry.file) {
                bail!("the manifest names {}, which is not there", entry.file);
            }
        }
        Ok(Carried {
            path: path.to_path_buf(),
            manifest,
            files,
        })
    }

    /// The build the functions are from.
    pub fn build(&self) -> BuildId {
        BuildId {
            version: self.manifest.version.clone(),
            commit: self.manifest.commit.clone(),
        }
    }

    /// The architectures carried, in manifest order.
    pub fn architectures(&self) -> Vec<Arch> {
        self.manifest
            .functions
            .iter()
            .filter_map(|e| Arch::parse_lambda_name(&e.arch))
            .collect()
    }

    pub fn has(&self, arch: Arch) -> bool {
        self.architectures().contains(&arch)
    }

    /// `0.1.0 (commit 1a2b3c4d5e6f) for x86_64 and arm64`, for `doctor`.
    pub fn describe(&self) -> String {
        let archs: Vec<&str> = self
            .architectures()
            .iter()
            .map(|a| a.lambda_name())
            .collect();
        format!("{} for {}", self.build(), archs.join(" and "))
    }

    /// The bootstrap for `arch`, unpacked and checked: its SHA-256 and size against the
    /// manifest, an ELF of that architecture, statically linked, of this build.
    pub fn function(&self, arch: Arch) -> Result<CarriedFunction> {
        let entry = self
            .manifest
            .functions
            .iter()
            .find(|e| Arch::parse_lambda_name(&e.arch) == Some(arch))
            .with_context(|| {
                format!(
                    "{} carries the function for {} only; pass --bootstrap PATH with a static {} \
                     build, or use a release that carries {}",
                    self.path.display(),
                    self.architectures()
                        .iter()
                        .map(|a| a.lambda_name())
                        .collect::<Vec<_>>()
                        .join(" and "),
                    arch.rust_target(),
                    arch.lambda_name()
                )
            })?;
        let (_, xz) = self
            .files
            .iter()
            .find(|(name, _)| *name == entry.file)
            .context("checked in parse")?;
        if entry.bytes > MAX_UNPACKED {
            bail!(
                "the manifest of {} names a {} function of {} bytes: damaged",
                self.path.display(),
                arch.lambda_name(),
                entry.bytes
            );
        }
        let mut bytes = Vec::with_capacity(entry.bytes as usize);
        lzma_rs::xz_decompress(&mut xz.as_slice(), &mut bytes).map_err(|e| {
            anyhow::anyhow!(
                "{} in {} is not xz ({e}): the file is damaged; download the release again",
                entry.file,
                self.path.display()
            )
        })?;
        let sha256 = hex::encode(Sha256::digest(&bytes));
        if sha256 != entry.sha256 || bytes.len() as u64 != entry.bytes {
            bail!(
                "the {} function carried by {} does not match its manifest (sha256 {sha256}, \
                 expected {}): the file is damaged or was changed; download the release again",
                arch.lambda_name(),
                self.path.display(),
                entry.sha256
            );
        }
        let elf = ElfInfo::parse(&bytes).context("the carried function is not an ELF binary")?;
        if elf.arch != arch || elf.dynamic {
            bail!(
                "the carried {} function is not a static {} binary",
                arch.lambda_name(),
                arch.rust_target()
            );
        }
        let build = BuildId::find_in(&bytes).unwrap_or_else(|| self.build());
        Ok(CarriedFunction {
            arch,
            build: build.clone(),
            sha256,
            bootstrap: Bootstrap {
                path: PathBuf::from(format!(
                    "{}#{}",
                    self.path.display(),
                    entry.file.trim_end_matches(".xz")
                )),
                bytes,
                build: Some(build.clone()),
            },
        })
    }
}

/// The payload length a footer names, when it is ours.
fn parse_footer(footer: &[u8; FOOTER_LEN]) -> Option<u64> {
    let (digits, magic) = footer.split_at(LENGTH_DIGITS);
    if magic != FOOTER_MAGIC || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A minimal static ELF header for `arch` followed by a build marker.
    fn fake_bootstrap(arch: Arch) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[..4].copy_from_slice(b"\x7fELF");
        b[4] = 2;
        b[5] = 1;
        let machine: u16 = match arch {
            Arch::X86_64 => 0x3e,
            Arch::Arm64 => 0xb7,
        };
        b[0x12..0x14].copy_from_slice(&machine.to_le_bytes());
        b.extend_from_slice(ummatics_sentiment_function::build_info::MARKER.as_bytes());
        b
    }

    /// What scripts/carry.sh writes, written here.
    fn attach(exe: &[u8], functions: &[(Arch, Vec<u8>)]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        let mut entries = Vec::new();
        let add = |builder: &mut tar::Builder<Vec<u8>>, name: &str, data: &[u8]| {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, data).unwrap();
        };
        let mut xz_files = Vec::new();
        for (arch, bytes) in functions {
            let mut xz = Vec::new();
            lzma_rs::xz_compress(&mut bytes.as_slice(), &mut xz).unwrap();
            let file = format!("bootstrap-{}.xz", arch.lambda_name());
            entries.push(ManifestEntry {
                arch: arch.lambda_name().into(),
                file: file.clone(),
                sha256: hex::encode(Sha256::digest(bytes)),
                bytes: bytes.len() as u64,
            });
            xz_files.push((file, xz));
        }
        let manifest = Manifest {
            format: 1,
            version: "0.1.0".into(),
            commit: "abc".into(),
            functions: entries,
        };
        add(
            &mut builder,
            "manifest.json",
            &serde_json::to_vec(&manifest).unwrap(),
        );
        for (name, data) in &xz_files {
            add(&mut builder, name, data);
        }
        let payload = builder.into_inner().unwrap();
        let mut out = exe.to_vec();
        out.extend_from_slice(&payload);
        out.extend_from_slice(format!("{:020}", payload.len()).as_bytes());
        out.extend_from_slice(FOOTER_MAGIC);
        out
    }

    fn write(bytes: &[u8]) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    #[test]
    fn a_binary_with_both_functions_gives_each_back_byte_for_byte() {
        let x86 = fake_bootstrap(Arch::X86_64);
        let arm = fake_bootstrap(Arch::Arm64);
        let file = write(&attach(
            b"\x7fELF the cli",
            &[(Arch::X86_64, x86.clone()), (Arch::Arm64, arm.clone())],
        ));
        let carried = Carried::read(file.path()).unwrap().unwrap();
        assert_eq!(carried.architectures(), vec![Arch::X86_64, Arch::Arm64]);
        let f = carried.function(Arch::Arm64).unwrap();
        assert_eq!(f.bootstrap.bytes, arm);
        assert_eq!(f.build, BuildId::current());
        assert_eq!(carried.function(Arch::X86_64).unwrap().bootstrap.bytes, x86);
    }

    #[test]
    fn a_plain_binary_carries_nothing() {
        let file = write(b"\x7fELF just a program, long enough to hold a footer ......");
        assert!(Carried::read(file.path()).unwrap().is_none());
        assert!(Carried::read(write(b"").path()).unwrap().is_none());
    }

    #[test]
    fn a_missing_architecture_says_what_to_do() {
        let file = write(&attach(
            b"cli",
            &[(Arch::X86_64, fake_bootstrap(Arch::X86_64))],
        ));
        let carried = Carried::read(file.path()).unwrap().unwrap();
        let e = carried.function(Arch::Arm64).unwrap_err().to_string();
        assert!(e.contains("carries the function for x86_64 only"), "{e}");
        assert!(e.contains("--bootstrap PATH"), "{e}");
    }

    #[test]
    fn a_changed_byte_is_found() {
        let mut bytes = attach(b"cli", &[(Arch::X86_64, fake_bootstrap(Arch::X86_64))]);
        // The xz stream sits after the manifest: flip a byte of its compressed data.
        let manifest_end = bytes
            .windows(b"bootstrap-x86_64.xz".len())
            .rposition(|w| w == b"bootstrap-x86_64.xz")
            .unwrap();
        let at = manifest_end + 512 + 40;
        bytes[at] ^= 0x55;
        let file = write(&bytes);
        let e = match Carried::read(file.path()).unwrap() {
            Some(carried) => format!("{:#}", carried.function(Arch::X86_64).unwrap_err()),
            None => panic!("the footer is intact"),
        };
        assert!(e.contains("damaged"), "{e}");
    }

    #[test]
    fn a_footer_naming_more_than_the_file_is_refused() {
        let mut bytes = b"cli".to_vec();
        bytes.extend_from_slice(format!("{:020}", 1_000_000).as_bytes());
        bytes.extend_from_slice(FOOTER_MAGIC);
        let e = Carried::read(write(&bytes).path()).unwrap_err().to_string();
        assert!(e.contains("is damaged"), "{e}");
    }
}
