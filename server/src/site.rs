//! The site (wasm, js, css) a binary serves must come from the same build:
//! a debug bundle behind a release server (or a stale one behind a fresh
//! server) renders pages that never hydrate. The bundle carries the build
//! stamp (`app::BUILD_STAMP`, see app/build.rs) as bytes in the wasm; the
//! server refuses to start when its own stamp is not there.

use anyhow::{bail, Context};
use leptos::prelude::LeptosOptions;
use std::path::PathBuf;

/// Where cargo-leptos put this site's wasm bundle.
pub fn wasm_path(opts: &LeptosOptions) -> PathBuf {
    PathBuf::from(opts.site_root.as_ref())
        .join(opts.site_pkg_dir.as_ref())
        .join(format!("{}.wasm", opts.output_name))
}

/// Ok when the wasm at `opts`' site carries exactly `stamp`.
pub fn check_bundle(opts: &LeptosOptions, stamp: &str) -> anyhow::Result<()> {
    let path = wasm_path(opts);
    let bytes = std::fs::read(&path).with_context(|| {
        format!(
            "no site bundle at {} (build it with `make build`, or point LEPTOS_SITE_ROOT at this build's site)",
            path.display()
        )
    })?;
    if !contains(&bytes, stamp.as_bytes()) {
        let found = find_stamp(&bytes).unwrap_or_else(|| "no RowCol stamp".into());
        bail!(
            "the site at {} belongs to another build ({found}); this binary is {stamp}. \
             Rebuild the site for this profile (`make build` for debug, `make build-release` \
             for release) or set LEPTOS_SITE_ROOT to this build's site",
            opts.site_root
        );
    }
    Ok(())
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The stamp another build left in the bundle, for the error message.
fn find_stamp(bytes: &[u8]) -> Option<String> {
    const PREFIX: &[u8] = b"rowcol-build:";
    let at = bytes.windows(PREFIX.len()).position(|w| w == PREFIX)?;
    let tail = &bytes[at..];
    let end = tail
        .iter()
        .position(|b| !(b.is_ascii_alphanumeric() || *b == b':' || *b == b'-'))
        .unwrap_or(tail.len());
    Some(String::from_utf8_lossy(&tail[..end]).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(dir: &std::path::Path, wasm: &[u8]) -> LeptosOptions {
        std::fs::create_dir_all(dir.join("pkg")).unwrap();
        std::fs::write(dir.join("pkg/rowcol.wasm"), wasm).unwrap();
        LeptosOptions::builder()
            .output_name("rowcol")
            .site_root(dir.display().to_string())
            .site_pkg_dir("pkg")
            .build()
    }

    const RELEASE: &str = "rowcol-build:release:00112233aabbccdd";
    const DEBUG: &str = "rowcol-build:debug:00112233aabbccdd";

    #[test]
    fn accepts_its_own_bundle() {
        let dir = tempfile::tempdir().unwrap();
        let opts = site(dir.path(), format!("\0asm..{RELEASE}\0..").as_bytes());
        check_bundle(&opts, RELEASE).unwrap();
    }

    #[test]
    fn refuses_another_builds_bundle_and_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let opts = site(dir.path(), format!("\0asm..{DEBUG}\0..").as_bytes());
        let err = check_bundle(&opts, RELEASE).unwrap_err().to_string();
        assert!(err.contains(DEBUG), "{err}");
        assert!(err.contains(RELEASE), "{err}");
    }

    #[test]
    fn refuses_a_missing_site() {
        let dir = tempfile::tempdir().unwrap();
        let opts = LeptosOptions::builder()
            .output_name("rowcol")
            .site_root(dir.path().join("nothing").display().to_string())
            .site_pkg_dir("pkg")
            .build();
        let err = check_bundle(&opts, RELEASE).unwrap_err().to_string();
        assert!(err.contains("no site bundle"), "{err}");
    }
}
