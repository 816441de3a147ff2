//! Replays every input saved under `fuzz/regressions/<target>/` (crashes the fuzzers found,
//! kept after the fix) and `fuzz/seeds/<target>/` through the fuzz targets' bodies, so the
//! ordinary test run keeps them fixed.

use std::fs;
use std::path::Path;

use rampart_fuzzing::TARGETS;

#[test]
fn every_saved_input_passes_its_target() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
    let mut replayed = 0;
    for (name, target) in TARGETS {
        for kind in ["regressions", "seeds"] {
            let Ok(entries) = fs::read_dir(fuzz.join(kind).join(name)) else {
                continue;
            };
            for entry in entries {
                let path = entry.unwrap().path();
                let input = fs::read(&path).unwrap();
                eprintln!("{name}: {}", path.display());
                target(&input);
                replayed += 1;
            }
        }
    }
    assert!(
        replayed > 0,
        "no saved input found under {}",
        fuzz.display()
    );
}
