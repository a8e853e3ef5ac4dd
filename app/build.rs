//! The build stamp: which build of the console this is. The server renders
//! it into every page and refuses to serve a site whose wasm bundle carries
//! another one; the browser bundle checks it before it marks the page
//! hydrated. It is a hash of the sources that shape the rendered HTML (this
//! crate, the hydrate entry, the lockfile) plus the profile, so the server
//! and the bundle of one build always agree, and a debug bundle never passes
//! for a release one (or a stale bundle for a fresh server).

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("manifest dir"));
    let root = manifest.parent().expect("workspace root").to_path_buf();
    let inputs = [
        manifest.join("src"),
        root.join("frontend/src"),
        root.join("Cargo.lock"),
    ];
    let mut all = Vec::new();
    for i in &inputs {
        println!("cargo:rerun-if-changed={}", i.display());
        if i.is_dir() {
            files(i, &mut all);
        } else {
            all.push(i.clone());
        }
    }
    all.sort();
    // SipHash with fixed keys: the same inputs give the same value in both
    // compilations (host and wasm) of one build.
    let mut h = DefaultHasher::new();
    for f in &all {
        f.strip_prefix(&root).unwrap_or(f).hash(&mut h);
        std::fs::read(f).unwrap_or_default().hash(&mut h);
    }
    // "debug" or "release" (profiles inheriting release, such as the wasm's
    // `wasm-release`, report "release").
    let profile = std::env::var("PROFILE").unwrap_or_else(|_| "unknown".into());
    println!(
        "cargo:rustc-env=ROWCOL_BUILD_STAMP=rowcol-build:{profile}:{:016x}",
        h.finish()
    );
}
