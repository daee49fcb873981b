//! Fixture loading for the golden tests.
//!
//! Fixtures live in the shared folder beside the repository
//! (`<repo>/../shared/fixtures`); `SHARED_FIXTURES` overrides the location.
#![allow(dead_code)]

use std::path::PathBuf;

pub fn fixtures_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("SHARED_FIXTURES") {
        return PathBuf::from(dir);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/fixtures")
}

/// Reads `<fixtures>/<rel>` or fails the test with the path it tried.
pub fn fixture(rel: &str) -> String {
    let path = fixtures_dir().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// Parses a fixture into an element (a root without xmlns gets jabber:client).
pub fn fixture_xml(rel: &str) -> minidom::Element {
    proto::parse_xml(&fixture(rel)).unwrap_or_else(|e| panic!("fixture {rel} is not XML: {e}"))
}
