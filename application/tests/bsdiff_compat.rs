//! The server's BSDIFF40 patches against Debian's `bsdiff`/`bspatch`
//! (Colin Percival's bsdiff 4.3, the format the expo-updates clients'
//! vendored `bspatch.c` applies), on the fixtures' real Hermes bundles
//! (v1 → v2): each tool applies the other's patches, and ours are no larger
//! than Debian's. (Measured: 94,196 vs 95,977 B for Android, 69,199 vs
//! 71,032 B for iOS.)

#![expect(
    clippy::unwrap_used,
    reason = "a test fails loudly on a value it did not expect"
)]

use std::path::Path;
use std::process::Command;

use application::bsdiff::{make_patch, verify};
use test_support::{Export, sha256_bytes_hex};

fn run(tool: &str, args: &[&Path]) {
    let status = Command::new(tool)
        .args(args)
        .status()
        .unwrap_or_else(|error| {
            panic!("{tool} did not run ({error}): scripts/test installs Debian's bsdiff")
        });
    assert!(status.success(), "{tool} {args:?}: {status}");
}

#[test]
fn patches_cross_apply_with_debian_bsdiff_on_the_fixture_bundles() {
    let (v1, v2) = (Export::v1(), Export::v2());
    let dir = std::env::temp_dir().join(format!("bsdiff-compat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for platform in ["android", "ios"] {
        let base = v1.bytes(&v1.bundle(platform));
        let target = v2.bytes(&v2.bundle(platform));
        let target_sha = sha256_bytes_hex(&target);
        let ours = make_patch(&base, &target, &target_sha).unwrap();

        let (base_file, ours_file) = (dir.join("base"), dir.join("ours.patch"));
        let (rebuilt_file, debian_file) = (dir.join("rebuilt"), dir.join("debian.patch"));
        let target_file = dir.join("target");
        std::fs::write(&base_file, &base).unwrap();
        std::fs::write(&target_file, &target).unwrap();
        std::fs::write(&ours_file, &ours).unwrap();

        // Debian's bspatch applies ours.
        run("bspatch", &[&base_file, &rebuilt_file, &ours_file]);
        let rebuilt = std::fs::read(&rebuilt_file).unwrap();
        assert_eq!(sha256_bytes_hex(&rebuilt), target_sha, "{platform}");

        // Ours applies Debian's, and ours are no larger.
        run("bsdiff", &[&base_file, &target_file, &debian_file]);
        let debian = std::fs::read(&debian_file).unwrap();
        verify(&base, &debian, &target_sha).unwrap();
        println!(
            "{platform}: bundle {} B, qbsdiff patch {} B, Debian bsdiff patch {} B",
            target.len(),
            ours.len(),
            debian.len()
        );
        assert!(
            ours.len() <= debian.len(),
            "{platform}: ours {} B, Debian's {} B",
            ours.len(),
            debian.len()
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
