//! Paths to test media shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

/// `testdata/` of this repository.
pub fn testdata() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata")
}

/// `../shared/testdata` beside the repository (override with FRAMESERVER_SHARED_TESTDATA).
pub fn shared() -> PathBuf {
    let p = std::env::var_os("FRAMESERVER_SHARED_TESTDATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata"));
    assert!(
        p.is_dir(),
        "shared test data not found at {} (set FRAMESERVER_SHARED_TESTDATA)",
        p.display()
    );
    p
}

/// Every video the tests index: this repo's generated clips and the shared real clips.
pub fn all_videos() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(testdata().join("videos"))
        .expect("testdata/videos")
        .chain(std::fs::read_dir(shared().join("videos")).expect("shared videos"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e != "md"))
        .collect();
    v.sort();
    v
}
