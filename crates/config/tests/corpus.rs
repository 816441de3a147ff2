//! The corpus in `tests/corpus/`: configurations whose verdict was checked with the real
//! nutcracker 0.5.0 (`nutcracker -t -c FILE`). rampart must accept every file nutcracker
//! accepts, and reject every file it rejects with an error naming the file and a line.

use std::fs;
use std::path::{Path, PathBuf};

fn corpus(verdict: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/corpus")
        .join(verdict);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.map(|entry| entry.path()))
        .collect::<Result<_, _>>()
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()));
    files.retain(|path| path.extension().is_some_and(|ext| ext == "yml"));
    files.sort();
    assert!(files.len() >= 20, "too few files in {}", dir.display());
    files
}

#[test]
fn accepts_what_nutcracker_accepts() {
    let failures: Vec<String> = corpus("accept")
        .iter()
        .filter_map(|path| {
            rampart_config::load(path)
                .err()
                .map(|error| error.to_string())
        })
        .collect();
    assert!(failures.is_empty(), "rejected:\n{}", failures.join("\n"));
}

#[test]
fn rejects_what_nutcracker_rejects_with_file_and_line() {
    for path in corpus("reject") {
        let error = match rampart_config::load(&path) {
            Ok(_) => panic!("{} was accepted", path.display()),
            Err(error) => error,
        };
        let text = error.to_string();
        let prefix = format!("{}:{}:", path.display(), error.line);
        assert!(error.line >= 1, "{text}");
        assert!(text.starts_with(&prefix), "{text}");
    }
}
