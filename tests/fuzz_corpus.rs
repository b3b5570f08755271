//! Replays every file of the fuzz corpora (`fuzz/corpus/<target>/`: seeds, and the inputs
//! that once found a bug) through the same harness the cargo-fuzz targets run, on the stable
//! toolchain, so CI keeps every fixed finding fixed without nightly or libFuzzer.

#[path = "../fuzz/src/harness.rs"]
mod harness;

use std::path::PathBuf;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus")
}

#[test]
fn every_corpus_file_goes_through_its_decoder() {
    let mut total = 0;
    for (name, run) in harness::TARGETS {
        let dir = corpus_dir().join(name);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        assert!(!files.is_empty(), "no seeds for {name}");
        for path in &files {
            let data = std::fs::read(path).unwrap();
            let outcome = std::panic::catch_unwind(|| run(&data));
            assert!(outcome.is_ok(), "{name}: {} panicked", path.display());
        }
        total += files.len();
    }
    assert!(total > 0);
}

#[test]
fn every_corpus_directory_has_a_target() {
    let names: Vec<&str> = harness::TARGETS.iter().map(|(n, _)| *n).collect();
    for entry in std::fs::read_dir(corpus_dir()).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        assert!(
            names.contains(&name.as_str()),
            "fuzz/corpus/{name} has no target in fuzz/src/harness.rs"
        );
    }
}
