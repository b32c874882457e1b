//! Which build this is: the workspace version and the commit, the same for the function and
//! the CLI that carries it (one workspace version; one `UMMATICS_BUILD_COMMIT`, see build.rs).
//!
//! The bootstrap keeps [`MARKER`] in its read-only data, so the CLI can tell which build a
//! `bootstrap` file is from its bytes alone — for any architecture, without running it.

/// The workspace version (`Cargo.toml`'s `workspace.package.version`).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The commit the build scripts built from, or `unknown` for a plain `cargo build`.
pub const COMMIT: &str = env!("UMMATICS_BUILD_COMMIT");

/// `0.1.0 (commit 1a2b3c4d5e6f)`.
pub const DESCRIPTION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("UMMATICS_BUILD_COMMIT"),
    ")"
);

/// What [`MARKER`] starts with.
pub const MARKER_PREFIX: &[u8] = b"\0ummatics-sentiment-function-build=";

/// `\0ummatics-sentiment-function-build=VERSION+COMMIT\0`: found in a bootstrap's bytes by
/// [`find_in`].
pub const MARKER: &str = concat!(
    "\0ummatics-sentiment-function-build=",
    env!("CARGO_PKG_VERSION"),
    "+",
    env!("UMMATICS_BUILD_COMMIT"),
    "\0"
);

/// A build's version and commit.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BuildId {
    pub version: String,
    pub commit: String,
}

impl BuildId {
    /// This build's.
    pub fn current() -> BuildId {
        BuildId {
            version: VERSION.to_string(),
            commit: COMMIT.to_string(),
        }
    }

    /// The build a binary's bytes say it is (its [`MARKER`]); `None` when it has none (not our
    /// function, or one from before the marker).
    pub fn find_in(bytes: &[u8]) -> Option<BuildId> {
        let at = bytes
            .windows(MARKER_PREFIX.len())
            .position(|w| w == MARKER_PREFIX)?;
        let rest = &bytes[at + MARKER_PREFIX.len()..];
        let end = rest.iter().take(200).position(|&b| b == 0)?;
        let text = std::str::from_utf8(&rest[..end]).ok()?;
        let (version, commit) = text.split_once('+')?;
        Some(BuildId {
            version: version.to_string(),
            commit: commit.to_string(),
        })
    }
}

impl std::fmt::Display for BuildId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (commit {})", self.version, self.commit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_binary_says_which_build_it_is() {
        let mut bytes = b"\x7fELF some code".to_vec();
        bytes.extend_from_slice(MARKER.as_bytes());
        bytes.extend_from_slice(b"more data");
        assert_eq!(BuildId::find_in(&bytes), Some(BuildId::current()));
        assert_eq!(BuildId::find_in(b"\x7fELF nothing here"), None);
        // A marker cut off by the end of the file is no marker.
        assert_eq!(
            BuildId::find_in(&MARKER.as_bytes()[..MARKER.len() - 1]),
            None
        );
    }
}
