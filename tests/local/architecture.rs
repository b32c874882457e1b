//! The architecture as the README's "Where things live" states it, checked on the source:
//! every AWS SDK use under `src/aws/`; the AWS layer resting only on Lambda facts; nothing
//! below the commands importing `cli` or `commands`; no command importing another; no
//! function over 150 lines. Each check names the file and line that breaks it.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// (path relative to the checkout, line number, line) of every line of code (comments out).
fn code_lines(dirs: &[&str]) -> Vec<(String, usize, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in dirs {
        rust_files(&root.join(dir), &mut files);
    }
    files.sort();
    let mut lines = Vec::new();
    for file in files {
        let name = file.strip_prefix(root).unwrap().display().to_string();
        for (i, line) in std::fs::read_to_string(&file).unwrap().lines().enumerate() {
            let trimmed = line.trim_start();
            if !trimmed.starts_with("//") {
                lines.push((name.clone(), i + 1, line.to_string()));
            }
        }
    }
    lines
}

#[test]
fn every_aws_sdk_use_is_under_src_aws() {
    let outside: Vec<String> = code_lines(&["src"])
        .into_iter()
        .filter(|(file, _, _)| !file.starts_with("src/aws/"))
        .filter(|(_, _, line)| {
            [
                "aws_sdk_",
                "aws_config",
                "aws_smithy",
                "aws_types",
                "aws_runtime",
            ]
            .iter()
            .any(|c| line.contains(c))
        })
        .map(|(file, n, line)| format!("{file}:{n}: {}", line.trim()))
        .collect();
    assert!(
        outside.is_empty(),
        "SDK use outside src/aws/:\n{}",
        outside.join("\n")
    );
}

#[test]
fn the_aws_layer_rests_on_lambda_facts_alone() {
    let lines = code_lines(&["src"]);
    let up: Vec<String> = lines
        .iter()
        .filter(|(file, _, _)| file.starts_with("src/aws/") || file == "src/lambda.rs")
        .filter(|(file, _, line)| {
            let allowed: &[&str] = if file == "src/lambda.rs" {
                &[]
            } else {
                &["crate::aws", "crate::lambda"]
            };
            line.match_indices("crate::")
                .any(|(at, _)| !allowed.iter().any(|a| line[at..].starts_with(a)))
        })
        .map(|(file, n, line)| format!("{file}:{n}: {}", line.trim()))
        .collect();
    assert!(up.is_empty(), "imports pointing up:\n{}", up.join("\n"));
}

#[test]
fn nothing_below_the_commands_imports_them_and_no_command_imports_another() {
    let mut wrong = Vec::new();
    for (file, n, line) in code_lines(&["src"]) {
        let command = file
            .strip_prefix("src/commands/")
            .map(|rest| rest.split(['/', '.']).next().unwrap().to_string());
        let at = format!("{file}:{n}: {}", line.trim());
        match &command {
            None if file != "src/main.rs"
                && file != "src/lib.rs"
                && (line.contains("crate::commands") || line.contains("crate::cli")) =>
            {
                wrong.push(at)
            }
            Some(own) if own != "mod" => {
                for (i, _) in line.match_indices("crate::commands::") {
                    let other = line[i + "crate::commands::".len()..]
                        .split(|c: char| !c.is_ascii_alphanumeric() && c != '_')
                        .next()
                        .unwrap();
                    if other != own {
                        wrong.push(at.clone());
                    }
                }
            }
            _ => {}
        }
    }
    assert!(
        wrong.is_empty(),
        "imports across layers:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn no_function_is_over_150_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in ["src", "client/src", "protocol/src", "function/src"] {
        rust_files(&root.join(dir), &mut files);
    }
    let mut long = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            let signature = [
                "fn ",
                "pub fn ",
                "async fn ",
                "pub async fn ",
                "pub(super) fn ",
                "pub(super) async fn ",
                "pub(crate) fn ",
                "pub(crate) async fn ",
            ]
            .iter()
            .any(|s| trimmed.starts_with(s));
            if !signature || trimmed.ends_with(';') {
                continue;
            }
            // rustfmt closes a function at its own indentation.
            let close = format!("{}}}", &line[..line.len() - trimmed.len()]);
            if let Some(end) = lines[i..].iter().position(|l| *l == close) {
                if end + 1 > 150 {
                    long.push(format!(
                        "{}:{}: {} lines",
                        file.strip_prefix(root).unwrap().display(),
                        i + 1,
                        end + 1
                    ));
                }
            }
        }
    }
    assert!(
        long.is_empty(),
        "functions over 150 lines:\n{}",
        long.join("\n")
    );
}

/// The CLI's top-level modules (`aws`, `stack`, `commands`, …) and which others each imports
/// outside its tests.
fn module_imports() -> std::collections::BTreeMap<String, std::collections::BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    let mut edges: std::collections::BTreeMap<_, std::collections::BTreeSet<_>> =
        Default::default();
    for file in files {
        let rel = file
            .strip_prefix(root.join("src"))
            .unwrap()
            .display()
            .to_string();
        let module = rel.split(['/', '.']).next().unwrap().to_string();
        if module == "main" || module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
            for (at, _) in line.match_indices("crate::") {
                let other: String = line[at + "crate::".len()..]
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                    .collect();
                if !other.is_empty() && other != module {
                    edges.entry(module.clone()).or_default().insert(other);
                }
            }
        }
    }
    edges
}

#[test]
fn no_import_cycle_between_modules() {
    let edges = module_imports();
    // Depth-first: a module met again while still on the path closes a cycle.
    fn visit(
        module: &str,
        edges: &std::collections::BTreeMap<String, std::collections::BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut std::collections::BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|m| m == module) {
            let mut cycle = path[at..].to_vec();
            cycle.push(module.to_string());
            return Some(cycle);
        }
        if !done.insert(module.to_string()) {
            return None;
        }
        path.push(module.to_string());
        for next in edges.get(module).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = std::collections::BTreeSet::new();
    for module in edges.keys() {
        let cycle = visit(module, &edges, &mut Vec::new(), &mut done);
        assert!(
            cycle.is_none(),
            "import cycle: {}",
            cycle.unwrap().join(" → ")
        );
    }
    // The AWS layer is beneath the stack, the budget and the images.
    for above in ["stack", "budget", "image", "pricing"] {
        assert!(
            edges[above].contains("aws"),
            "{above} should call AWS through crate::aws"
        );
    }
}
