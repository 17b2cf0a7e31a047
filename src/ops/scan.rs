//! Judging content for plaintext Secrets: the hook, `scan`, `verify` and `encrypt` share one
//! judge, [`crate::core::judge`], which reads as kubectl reads. This module keeps the names
//! the CLI and the tests use.

pub use crate::core::judge::{PlaintextFinding, ScanReport};
use crate::core::kubeyaml::Limits;

/// Finds plaintext Secrets (with values) in manifest content of any extension, within the
/// default [`Limits`]. Content that is not UTF-8 text or holds no mapping is passed.
pub fn scan_content(input: &[u8]) -> ScanReport {
    scan_content_with(input, &Limits::default())
}

/// [`scan_content`] within `limits`: content over them is a finding (the judge fails closed).
pub fn scan_content_with(input: &[u8], limits: &Limits) -> ScanReport {
    crate::core::judge::judge(input, limits)
}

/// [`scan_content`] for a file named `path` (see [`crate::core::judge::judge_file`]).
pub fn scan_file(path: &str, input: &[u8]) -> ScanReport {
    crate::core::judge::judge_file(path, input, &Limits::default())
}

/// What [`scan_file`] would say of content of `size` bytes when its size alone decides it (too
/// large to judge: a finding), so that it need not be read.
pub fn scan_size(size: u64) -> Option<ScanReport> {
    crate::core::judge::judge_size(size, &Limits::default())
}
