//! The commit the function (and the CLI, which links it) was built from: given by the build
//! scripts (`scripts/release.sh`, `scripts/test.sh`) as `UMMATICS_BUILD_COMMIT`, so a plain
//! `cargo build` never runs git and never rebuilds because a commit was made.

fn main() {
    println!("cargo:rerun-if-env-changed=UMMATICS_BUILD_COMMIT");
    let commit = std::env::var("UMMATICS_BUILD_COMMIT")
        .ok()
        .map(|c| c.trim().to_string())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "unknown".to_string());
    if !commit
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
    {
        panic!("UMMATICS_BUILD_COMMIT={commit:?}: only letters, digits, '-' and '.' are allowed");
    }
    println!("cargo:rustc-env=UMMATICS_BUILD_COMMIT={commit}");
}
