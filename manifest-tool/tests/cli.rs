//! The `manifest` binary end to end: exit codes, one-line errors on stderr, outputs on disk.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn testdata(p: &str) -> PathBuf {
    repo().join("testdata").join(p)
}

fn manifest(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_manifest"))
        .args(args)
        .output()
        .expect("run manifest")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs `manifest create` on `source` into a fresh dir; returns the output and the dir.
fn create(source: &Path, extra: &[&str]) -> (Output, tempfile::TempDir) {
    let out = tempfile::tempdir().unwrap();
    let mut args = vec!["create", "--output-dir", out.path().to_str().unwrap()];
    args.extend_from_slice(extra);
    args.push(source.to_str().unwrap());
    (manifest(&args), out)
}

/// Every failure: exit 1, one line on stderr starting with "error:", no manifest written.
fn assert_fails(source: &Path, extra: &[&str], needle: &str) {
    let (o, dir) = create(source, extra);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(1), "{}: {err}", source.display());
    assert_eq!(err.lines().count(), 1, "one line expected: {err}");
    assert!(
        err.starts_with("error: ") && err.contains(needle),
        "{}: {err}",
        source.display()
    );
    assert!(
        !dir.path().join("manifest.jsonl").exists(),
        "no manifest on failure"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "no temp files left behind"
    );
}

#[test]
fn creates_a_video_manifest_and_index() {
    let (o, dir) = create(&testdata("videos/h264_bframes.mp4"), &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        "The manifest file has been prepared\n"
    );
    let m = std::fs::read_to_string(dir.path().join("manifest.jsonl")).unwrap();
    assert!(m.starts_with("{\"version\":\"1.1\"}\n{\"type\":\"video\"}\n{\"properties\":{\"name\":\"h264_bframes.mp4\""));
    assert_eq!(m.lines().count(), 3 + 4, "4 key frames");
    let index = std::fs::read_to_string(dir.path().join("index.json")).unwrap();
    assert!(index.starts_with("{\"0\":"), "{index}");
}

#[test]
fn bad_inputs_fail_with_one_line_and_write_nothing() {
    assert_fails(&testdata("bad/empty.mp4"), &[], "the file is empty");
    assert_fails(&testdata("bad/not_media.mp4"), &[], "not a media file");
    assert_fails(
        &testdata("bad/truncated_no_moov.mp4"),
        &[],
        "not a media file",
    );
    assert_fails(&testdata("bad/truncated.mp4"), &[], "truncated");
    assert_fails(&testdata("bad/audio_only.m4a"), &[], "no video stream");
    assert_fails(
        &testdata("nope/missing.mp4"),
        &[],
        "no such file or directory",
    );
    assert_fails(
        &testdata("images/bad"),
        &[],
        "failed to parse image file 'broken.png'",
    );
    assert_fails(
        &testdata("images/set/a.jpg"),
        &[],
        "you can specify a video path",
    );
    assert_fails(
        &testdata("videos/gop_long.mp4"),
        &[],
        "The number of keyframes is not enough",
    );
    let empty = tempfile::tempdir().unwrap();
    assert_fails(empty.path(), &[], "no images found");
    assert_fails(&testdata("images/set/*.nomatch"), &[], "no images found");
}

#[test]
fn unwritable_output_dir_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = file.join("sub");
    let o = manifest(&[
        "create",
        "--output-dir",
        out.to_str().unwrap(),
        testdata("videos/vp9.webm").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.starts_with("error: cannot write to the output directory") && err.lines().count() == 1,
        "{err}"
    );
}

#[test]
fn packed_b_frame_avi_gets_a_remux_command() {
    let megamind = repo().join("../shared/testdata/videos/Megamind.avi");
    assert_fails(&megamind, &["--force"], "ffmpeg -fflags +genpts");
}

#[test]
fn damaged_video_gets_a_manifest_or_a_clear_error() {
    let (o, dir) = create(&testdata("bad/garbage_middle.mp4"), &["--force"]);
    if o.status.success() {
        let v = manifest(&[
            "validate",
            dir.path().to_str().unwrap(),
            testdata("bad/garbage_middle.mp4").to_str().unwrap(),
        ]);
        assert!(v.status.success(), "{}", stderr(&v));
    } else {
        assert_eq!(stderr(&o).lines().count(), 1);
    }
}

#[test]
fn a_failed_run_leaves_an_existing_manifest_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("manifest.jsonl");
    std::fs::write(&path, "previous\n").unwrap();
    let o = manifest(&[
        "create",
        "--output-dir",
        dir.path().to_str().unwrap(),
        testdata("bad/truncated.mp4").to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "previous\n");
}

#[test]
fn force_and_chunk_size_change_the_key_frame_rule() {
    let (o, _d) = create(&testdata("videos/gop_long.mp4"), &["--force"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // GOP 120 passes with chunk size 40 (limit 121 frames per key frame).
    let (o, _d) = create(&testdata("videos/gop_long.mp4"), &["--chunk-size", "40"]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn validate_accepts_its_own_output_and_reports_a_mismatch() {
    let video = testdata("videos/h264_bframes.mp4");
    let (o, dir) = create(&video, &[]);
    assert!(o.status.success());
    let m = dir.path().join("manifest.jsonl");
    let ok = manifest(&[
        "validate",
        "--checksums",
        m.to_str().unwrap(),
        video.to_str().unwrap(),
    ]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    // Against another video: the key frames are not where the manifest says.
    let other = testdata("videos/vp9.webm");
    let bad = manifest(&["validate", m.to_str().unwrap(), other.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("does not match the video") || stderr(&bad).contains("error:"),
        "{}",
        stderr(&bad)
    );
    // A corrupted line is reported with its line number.
    let text = std::fs::read_to_string(&m)
        .unwrap()
        .replacen("\"pts\"", "\"ptz\"", 1);
    std::fs::write(&m, text).unwrap();
    let broken = manifest(&["validate", m.to_str().unwrap()]);
    assert_eq!(broken.status.code(), Some(1));
    assert!(stderr(&broken).contains("line 4"), "{}", stderr(&broken));
}

#[test]
fn validate_images_against_their_directory() {
    let set = testdata("images/set");
    let (o, dir) = create(&set, &["--sorting", "natural"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let m = dir.path().join("manifest.jsonl");
    let ok = manifest(&[
        "validate",
        "--checksums",
        m.to_str().unwrap(),
        set.to_str().unwrap(),
    ]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let wrong = manifest(&[
        "validate",
        m.to_str().unwrap(),
        testdata("images").to_str().unwrap(),
    ]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(stderr(&wrong).contains("not found"), "{}", stderr(&wrong));
}

#[test]
fn info_explains_gops() {
    let o = manifest(&["info", testdata("videos/gop_long.mp4").to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("frames:          260"), "{text}");
    assert!(text.contains("largest GOP 120 frames"), "{text}");
    assert!(text.contains("needs --force"), "{text}");
    let j = manifest(&[
        "info",
        "--json",
        testdata("videos/rotated90.mp4").to_str().unwrap(),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&j.stdout).unwrap();
    assert_eq!(
        (v["display_width"].as_u64(), v["display_height"].as_u64()),
        (Some(180), Some(320))
    );
    let bad = manifest(&["info", testdata("bad/not_media.mp4").to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(1));
}
