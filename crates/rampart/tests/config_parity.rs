//! `rampart -t` against the real `nutcracker -t` on the configuration corpus: the same verdict
//! for every file, and every rejection names the file and the line.

mod support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::rampart_bin;

fn corpus(verdict: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../config/tests/corpus")
        .join(verdict);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|error| panic!("{}: {error}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yml"))
        .collect();
    files.sort();
    files
}

fn test_conf(binary: &str, file: &Path) -> (Option<i32>, String) {
    let output = Command::new(binary)
        .arg("-t")
        .arg("-c")
        .arg(file)
        .output()
        .expect(binary);
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn rampart_and_nutcracker_agree_on_every_corpus_file() {
    let mut checked = 0;
    for (verdict, expected) in [("accept", 0), ("reject", 1)] {
        for file in corpus(verdict) {
            let (nutcracker, _) = test_conf("nutcracker", &file);
            assert_eq!(
                nutcracker,
                Some(expected),
                "nutcracker's verdict on {}",
                file.display()
            );
            let (rampart, stderr) = test_conf(rampart_bin(), &file);
            assert_eq!(
                rampart,
                Some(expected),
                "rampart's verdict on {}: {stderr}",
                file.display()
            );
            if expected == 1 {
                let located = format!("{}:", file.display());
                assert!(
                    stderr.contains(&located),
                    "{} names file and line: {stderr}",
                    file.display()
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 40, "the corpus has {checked} files");
    println!("config parity: {checked} files, same verdict as nutcracker -t");
}
