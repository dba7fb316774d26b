//! Byte-for-byte comparison with manifests written by CVAT's own algorithm: the CVAT golden
//! files in ../shared/testdata/cvat, and testdata/golden (made by benches/baseline, a port of
//! CVAT v2.73's generator running on PyAV 16.0.1; see testdata/golden/README.md).

mod common;

use std::path::{Path, PathBuf};

use frameserver::manifest::{self, ImageOptions, Manifest, SortingMethod, VideoOptions};

fn video_bytes(path: &Path, force: bool) -> Result<(Vec<u8>, String), manifest::ManifestError> {
    let opts = VideoOptions {
        force,
        ..Default::default()
    };
    let index = manifest::index_video(path, &opts, &|_| {})?;
    let (bytes, offsets) = index.manifest.to_bytes();
    Ok((bytes, manifest::index_json(&offsets)))
}

fn image_bytes(source: &str, sorting: SortingMethod) -> (Vec<u8>, String) {
    let set = manifest::discover(source, sorting).unwrap();
    let items = manifest::build_items(
        &set,
        ImageOptions {
            sorting,
            checksums: true,
        },
        &|| {},
    )
    .unwrap();
    let (bytes, offsets) = Manifest::Images { items }.to_bytes();
    (bytes, manifest::index_json(&offsets))
}

fn read(p: PathBuf) -> Vec<u8> {
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn cvat_video_golden_is_reproduced_byte_for_byte() {
    let dir = common::shared().join("cvat/video");
    let (bytes, index) = video_bytes(&dir.join("video_1.mp4"), false).unwrap();
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        String::from_utf8(read(dir.join("manifest.jsonl"))).unwrap()
    );
    assert_eq!(index, r#"{"0":121}"#);
}

#[test]
fn cvat_image_golden_is_reproduced_except_the_version() {
    let dir = common::shared().join("cvat/images_case_65");
    let pattern = format!("{}/*.png", dir.display());
    let (bytes, index) = image_bytes(&pattern, SortingMethod::Lexicographical);
    let golden = String::from_utf8(read(dir.join("manifest.jsonl"))).unwrap();
    // The golden file was written by an older CVAT as version 1.0; v2.73 writes 1.1.
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        golden.replacen("\"1.0\"", "\"1.1\"", 1)
    );
    assert_eq!(index, r#"{"0":36,"1":153}"#);
}

/// Every golden produced by CVAT's algorithm: (golden dir name, source, flags).
fn goldens() -> Vec<(String, PathBuf, String)> {
    let tsv = String::from_utf8(read(common::testdata().join("golden/outcomes.tsv"))).unwrap();
    tsv.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            let source = match f[1].strip_prefix("shared/testdata/") {
                Some(rest) => common::shared().join(rest),
                None => PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(f[1]),
            };
            (f[0].to_owned(), source, f[2].to_owned())
        })
        .collect()
}

#[test]
fn every_golden_video_manifest_is_reproduced() {
    let mut checked = 0;
    for (name, source, flags) in goldens() {
        let golden = common::testdata().join("golden").join(&name);
        if flags.starts_with("--sorting") || !golden.join("manifest.jsonl").exists() {
            continue;
        }
        let (bytes, index) = video_bytes(&source, flags.contains("--force"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            String::from_utf8(read(golden.join("manifest.jsonl"))).unwrap(),
            "{name}"
        );
        assert_eq!(index.as_bytes(), read(golden.join("index.json")), "{name}");
        checked += 1;
    }
    assert!(checked >= 13, "only {checked} golden videos found");
}

#[test]
fn golden_image_manifests_are_reproduced_with_both_sortings() {
    let set = common::testdata().join("images/set");
    for (sorting, dir) in [
        (SortingMethod::Lexicographical, "images_set_lexicographical"),
        (SortingMethod::Natural, "images_set_natural"),
    ] {
        let (bytes, index) = image_bytes(set.to_str().unwrap(), sorting);
        let golden = common::testdata().join("golden").join(dir);
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            String::from_utf8(read(golden.join("manifest.jsonl"))).unwrap(),
            "{dir}"
        );
        assert_eq!(index.as_bytes(), read(golden.join("index.json")), "{dir}");
    }
}

#[test]
fn every_pillow_pixel_layout_hashes_like_pillow() {
    // 1/2/4-bit grey and palette, LA 8/16-bit, RGBA 16-bit, tRNS, GIF, TIFF, WebP+alpha,
    // JPEG 4:4:4 / 4:2:2 / progressive / CMYK: checksums made by Pillow 12.3's tobytes().
    let modes = common::testdata().join("images/modes");
    let golden = common::testdata().join("golden/images_modes");
    let (bytes, index) = image_bytes(modes.to_str().unwrap(), SortingMethod::Lexicographical);
    let expected = String::from_utf8(read(golden.join("manifest.jsonl"))).unwrap();
    let actual = String::from_utf8(bytes).unwrap();
    for (a, e) in actual.lines().zip(expected.lines()) {
        assert_eq!(a, e);
    }
    assert_eq!(actual, expected);
    assert_eq!(index.as_bytes(), read(golden.join("index.json")));
}

#[test]
fn videos_cvat_needs_force_for_fail_without_it_with_cvats_message() {
    for (name, source, flags) in goldens() {
        let outcome_needs_force = flags == "--force" && !name.starts_with("shared-");
        if !outcome_needs_force {
            continue;
        }
        let err = video_bytes(&source, false).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "The number of keyframes is not enough for smooth iteration over the video"
            ),
            "{name}: {err}"
        );
    }
    let bbb = common::shared().join("videos/bigbuckbunny.mp4");
    assert!(video_bytes(&bbb, false).is_err());
}

/// md5 of frame 0 as the ffmpeg CLI converts it to rgb24 (its scale filter follows colour tags).
fn ffmpeg_cli_frame0_md5(path: &Path) -> String {
    use md5::Digest;
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-frames:v", "1", "-pix_fmt", "rgb24", "-f", "rawvideo", "-"])
        .output()
        .expect("the ffmpeg CLI (installed by scripts/install-deps.sh)");
    assert!(out.status.success());
    format!("{:x}", md5::Md5::digest(&out.stdout))
}

#[test]
fn tagged_colour_mode_follows_the_bt709_tag_like_newer_pyav() {
    let bt709 = common::testdata().join("videos/bt709.mp4");
    let frame0 = |color| {
        let opts = VideoOptions {
            color,
            ..Default::default()
        };
        let index = manifest::index_video(&bt709, &opts, &|_| {}).unwrap();
        let Manifest::Video { keyframes, .. } = index.manifest else {
            unreachable!()
        };
        keyframes[0].checksum.clone()
    };
    let untagged = frame0(frameserver::media::ColorMode::Untagged);
    let tagged = frame0(frameserver::media::ColorMode::Tagged);
    assert_ne!(
        untagged, tagged,
        "BT.709 and BT.601 conversions must differ"
    );
    assert_eq!(tagged, ffmpeg_cli_frame0_md5(&bt709));
    // Untagged content is the same either way.
    let full = common::testdata().join("videos/fullrange.mp4");
    let opts = VideoOptions {
        color: frameserver::media::ColorMode::Tagged,
        ..Default::default()
    };
    let index = manifest::index_video(&full, &opts, &|_| {}).unwrap();
    let Manifest::Video { keyframes, .. } = index.manifest else {
        unreachable!()
    };
    assert_eq!(keyframes[0].checksum, ffmpeg_cli_frame0_md5(&full));
}
