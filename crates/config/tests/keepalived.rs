//! The keepalived.conf reader: the corpus in `tests/keepalived_corpus/` (verdicts checked with
//! keepalived 2.2.7's `keepalived -t`, see its README), and the model built from the seed's
//! configuration and from every supported keyword.

use std::fs;
use std::path::{Path, PathBuf};

use rampart_config::keepalived::{self, KeepalivedError};

fn corpus(verdict: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/keepalived_corpus")
        .join(verdict);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()));
    files.retain(|path| path.extension().is_some_and(|ext| ext == "conf"));
    files.sort();
    assert!(!files.is_empty(), "no files in {}", dir.display());
    files
}

/// The values of the `! NAME: value` header lines of a corpus file.
fn header(path: &Path, name: &str) -> Vec<String> {
    let text = fs::read_to_string(path).unwrap();
    let prefix = format!("! {name}: ");
    text.lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .map(str::to_owned)
        .collect()
}

#[test]
fn corpus_accepts_with_the_expected_warnings() {
    let mut failures = Vec::new();
    for path in corpus("accept") {
        let config = match keepalived::load(&path) {
            Ok(config) => config,
            Err(error) => {
                failures.push(format!("rejected: {error}"));
                continue;
            }
        };
        let expected = header(&path, "warn");
        let warnings: Vec<String> = config.warnings.iter().map(ToString::to_string).collect();
        let prefix = format!("{}:", path.display());
        let all_found = expected.iter().all(|want| {
            warnings
                .iter()
                .any(|warning| warning.contains(want.as_str()))
        });
        let all_named = warnings.iter().all(|warning| warning.starts_with(&prefix));
        if warnings.len() != expected.len() || !all_found || !all_named {
            failures.push(format!(
                "{}: expected warnings {expected:?}, got {warnings:#?}",
                path.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn corpus_rejects_naming_file_line_and_reason() {
    let mut failures = Vec::new();
    for path in corpus("reject") {
        let error: KeepalivedError = match keepalived::load(&path) {
            Ok(_) => {
                failures.push(format!("{}: accepted", path.display()));
                continue;
            }
            Err(error) => error,
        };
        let text = error.to_string();
        let [expect] = header(&path, "expect").try_into().unwrap_or_else(|lines| {
            panic!(
                "{}: one \"! expect: LINE: TEXT\" line, found {lines:?}",
                path.display()
            )
        });
        let (line, want) = expect.split_once(": ").unwrap();
        let prefix = format!("{}:{line}:", path.display());
        if !text.starts_with(&prefix) || !text.contains(want) || error.line < 1 {
            failures.push(format!(
                "{}: expected line {line} and {want:?}, got: {text}",
                path.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
