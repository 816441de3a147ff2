//! No input makes the parser panic: every prefix of the corpus files, corpus files with bytes
//! replaced, and generated garbage (from a fixed-seed generator, so failures reproduce).

use std::fs;
use std::path::{Path, PathBuf};

fn corpus() -> Vec<(PathBuf, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files = Vec::new();
    for verdict in ["accept", "reject"] {
        for entry in fs::read_dir(root.join(verdict)).unwrap() {
            let path = entry.unwrap().path();
            let bytes = fs::read(&path).unwrap();
            files.push((path, bytes));
        }
    }
    files.sort();
    files
}

/// xorshift64*: a tiny deterministic generator.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const ALPHABET: &[u8] = b" \t\n\r:-#\"'[]{}&*!|>?%@`,.0123456789abpq\\/\xC3\xA9\x00\x7F";

fn parse_bytes(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let _ = rampart_config::parse(&text, Path::new("fuzz.yml"));
}

#[test]
fn every_prefix_of_the_corpus() {
    for (_, bytes) in corpus() {
        let step = if bytes.len() < 600 { 1 } else { 5 };
        for end in (0..=bytes.len()).step_by(step) {
            parse_bytes(&bytes[..end]);
        }
    }
}

#[test]
fn corpus_with_bytes_replaced() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let files = corpus();
    for _ in 0..4000 {
        let (_, original) = &files[rng.below(files.len())];
        let mut bytes = original.clone();
        for _ in 0..=rng.below(6) {
            if bytes.is_empty() {
                break;
            }
            let at = rng.below(bytes.len());
            match rng.below(3) {
                0 => bytes[at] = ALPHABET[rng.below(ALPHABET.len())],
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, ALPHABET[rng.below(ALPHABET.len())]),
            }
        }
        parse_bytes(&bytes);
    }
}

#[test]
fn generated_garbage() {
    let mut rng = Rng(0x0bad_cafe_f00d_0002);
    for _ in 0..3000 {
        let len = rng.below(160);
        let bytes: Vec<u8> = (0..len)
            .map(|_| ALPHABET[rng.below(ALPHABET.len())])
            .collect();
        parse_bytes(&bytes);
    }
}

#[test]
fn odd_files_through_load() {
    let dir =
        std::env::temp_dir().join(format!("rampart-config-robustness-{}", std::process::id()));
    fs::create_dir_all(&dir).unwrap();
    let cases: [&[u8]; 6] = [
        b"",
        b"\xFF\xFE",
        b"\xFF\xFEp\x00:\x00",
        b"\xFE\xFF\x00p\x00:\x00 \xD8\x00",
        b"\xEF\xBB\xBF",
        b"p:\n  listen: \xC3\n",
    ];
    for (index, bytes) in cases.iter().enumerate() {
        let path = dir.join(format!("{index}.yml"));
        fs::write(&path, bytes).unwrap();
        let error = rampart_config::load(&path).unwrap_err();
        assert!(error.to_string().starts_with(&path.display().to_string()));
    }
    fs::remove_dir_all(&dir).unwrap();
}
