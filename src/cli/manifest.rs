//! `manifest create | validate | info`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use clap::{Args, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};

use crate::manifest::{
    self, ImageOptions, Manifest, ManifestError, Progress, Rejection, Severity, SortingMethod,
    ValidateOptions, VideoOptions,
};
use crate::media::{ColorMode, FrameReader, VideoSource};

/// The manifest subcommands.
#[derive(Subcommand, Debug)]
pub enum ManifestCommand {
    /// Write manifest.jsonl and index.json for a video, a directory of images or a glob pattern.
    Create(CreateArgs),
    /// Check a manifest's structure, and with the media, that it matches it.
    Validate(ValidateArgs),
    /// Show what a video looks like to an indexer: frames, key frames, GOPs, random-access cost.
    Info(InfoArgs),
}

/// Colour handling of checksums.
#[derive(ValueEnum, Clone, Copy, Debug, Default)]
pub enum ColorArg {
    /// CVAT v2.73 (PyAV 16): colour tags ignored, swscale defaults.
    #[default]
    Untagged,
    /// Follow the frame's colourspace tags (newer PyAV).
    Tagged,
}

impl From<ColorArg> for ColorMode {
    fn from(c: ColorArg) -> Self {
        match c {
            ColorArg::Untagged => ColorMode::Untagged,
            ColorArg::Tagged => ColorMode::Tagged,
        }
    }
}

/// Sorting of image frames.
#[derive(ValueEnum, Clone, Copy, Debug, Default)]
pub enum SortArg {
    #[default]
    Lexicographical,
    Natural,
    Predefined,
    Random,
}

impl From<SortArg> for SortingMethod {
    fn from(s: SortArg) -> Self {
        match s {
            SortArg::Lexicographical => SortingMethod::Lexicographical,
            SortArg::Natural => SortingMethod::Natural,
            SortArg::Predefined => SortingMethod::Predefined,
            SortArg::Random => SortingMethod::Random,
        }
    }
}

/// Arguments of `manifest create`.
#[derive(Args, Debug)]
pub struct CreateArgs {
    /// Write the manifest even if the video has too few key frames for smooth seeking.
    #[arg(long)]
    pub force: bool,
    /// Directory for manifest.jsonl and index.json (created if missing).
    #[arg(long, default_value = ".")]
    pub output_dir: PathBuf,
    /// Order of image frames.
    #[arg(long, value_enum, default_value_t = SortArg::Lexicographical)]
    pub sorting: SortArg,
    /// Chunk size used by the "not enough key frames" rule (frames // keyframes >= 3*N+1).
    #[arg(long, default_value_t = manifest::DEFAULT_CHUNK_SIZE as u32, value_parser = clap::value_parser!(u32).range(1..))]
    pub chunk_size: u32,
    /// How checksums treat colour tags.
    #[arg(long, value_enum, default_value_t = ColorArg::Untagged)]
    pub color: ColorArg,
    /// Decoding threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub workers: usize,
    /// Print what indexing found (rejected key frames, timestamps) on stderr.
    #[arg(short, long)]
    pub verbose: bool,
    /// Largest image (width x height) decoded for checksums; larger ones are refused from their
    /// header (a decompression-bomb guard, as `serve --max-image-pixels`).
    #[arg(long, default_value_t = crate::media::image::DEFAULT_MAX_PIXELS)]
    pub max_image_pixels: u64,
    /// A video file, a directory of images, or a glob pattern of images (quote it).
    pub source: String,
}

/// Arguments of `manifest validate`.
#[derive(Args, Debug)]
pub struct ValidateArgs {
    /// Also compare checksums with the media (CVAT never re-checks video checksums).
    #[arg(long)]
    pub checksums: bool,
    /// How the checksums were computed.
    #[arg(long, value_enum, default_value_t = ColorArg::Untagged)]
    pub color: ColorArg,
    /// Largest image (width x height) decoded for checksums (see `create`).
    #[arg(long, default_value_t = crate::media::image::DEFAULT_MAX_PIXELS)]
    pub max_image_pixels: u64,
    /// The manifest.jsonl file (or the directory holding it).
    pub manifest: PathBuf,
    /// The video, or the directory the image names are relative to.
    pub media: Option<PathBuf>,
}

/// Arguments of `manifest info`.
#[derive(Args, Debug)]
pub struct InfoArgs {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// The video file.
    pub media: PathBuf,
}

/// Runs a manifest subcommand; errors go to stderr as one line. Returns the exit code.
pub fn run(cmd: ManifestCommand) -> i32 {
    let result = match cmd {
        ManifestCommand::Create(a) => create(a),
        ManifestCommand::Validate(a) => validate(a),
        ManifestCommand::Info(a) => info(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}

fn expand_user(s: &str) -> String {
    match (s.strip_prefix('~'), std::env::var("HOME")) {
        (Some(rest), Ok(home)) if rest.is_empty() || rest.starts_with('/') => {
            format!("{home}{rest}")
        }
        _ => s.to_owned(),
    }
}

fn absolute(p: &Path) -> PathBuf {
    if p.is_absolute() {
        p.to_owned()
    } else {
        std::env::current_dir()
            .map(|d| d.join(p))
            .unwrap_or_else(|_| p.to_owned())
    }
}

fn progress_bar(len: u64, msg: &'static str, bytes: bool) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let template = if bytes {
        "{msg} [{bar:30}] {bytes}/{total_bytes} ({eta})"
    } else {
        "{msg} [{bar:30}] {pos}/{len} ({eta})"
    };
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(template)
            .expect("valid template")
            .progress_chars("=> "),
    );
    pb.set_message(msg);
    pb
}

fn create(a: CreateArgs) -> Result<i32, ManifestError> {
    crate::media::image::set_max_pixels(a.max_image_pixels);
    let source = expand_user(&a.source);
    let is_glob = source.contains(['*', '?', '[']);
    let path = absolute(Path::new(&source));
    if !is_glob && !path.exists() {
        return Err(ManifestError::Usage(format!(
            "'{source}': no such file or directory"
        )));
    }
    let started = Instant::now();
    let manifest = if !is_glob && path.is_file() {
        if manifest::is_image_name(&path) {
            return Err(ManifestError::Usage(format!(
                "'{source}' is an image: you can specify a video path or a directory/pattern with images"
            )));
        }
        let opts = VideoOptions {
            chunk_size: a.chunk_size as usize,
            force: a.force,
            color: a.color.into(),
            workers: a.workers,
        };
        let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        let pb = progress_bar(size, "Manifest creating", true);
        let index = manifest::index_video(&path, &opts, &|p| match p {
            Progress::Demux { bytes, .. } => pb.set_position(bytes),
            Progress::Seek { .. } => {}
        })?;
        pb.finish_and_clear();
        let r = &index.report;
        for w in &r.warnings {
            eprintln!("warning: {w}");
        }
        if a.verbose {
            eprintln!(
                "{}: {} {}x{} {}, {} packets, {} key packets, {} usable key frames, largest GOP {} frames, timestamps from {:?}",
                path.display(),
                r.info.codec,
                r.info.width,
                r.info.height,
                r.info.pixel_format,
                r.packets,
                r.key_packets,
                index.manifest.len(),
                r.largest_gop,
                r.timestamps
            );
            for k in &r.rejected {
                eprintln!(
                    "  key frame {} (pts {}) not usable: {}",
                    k.number,
                    k.pts,
                    describe_rejection(&k.why)
                );
            }
        }
        index.manifest
    } else {
        let root = if is_glob {
            source.clone()
        } else {
            path.to_string_lossy().into_owned()
        };
        let root = if is_glob && !Path::new(&root).is_absolute() {
            absolute(Path::new(&root)).to_string_lossy().into_owned()
        } else {
            root
        };
        let set = manifest::discover(&root, a.sorting.into())?;
        let pb = progress_bar(set.frames.len() as u64, "Manifest creating", false);
        let items = manifest::build_items(
            &set,
            ImageOptions {
                sorting: a.sorting.into(),
                checksums: true,
            },
            &|| pb.inc(1),
        )?;
        pb.finish_and_clear();
        Manifest::Images { items }
    };
    let out = manifest.write_to_dir(&absolute(&a.output_dir))?;
    println!("The manifest file has been prepared");
    if a.verbose {
        eprintln!(
            "wrote {} ({} {} lines) in {:.2}s",
            out.display(),
            manifest.len(),
            if matches!(manifest, Manifest::Video { .. }) {
                "key frame"
            } else {
                "image"
            },
            started.elapsed().as_secs_f64()
        );
    }
    Ok(0)
}

fn describe_rejection(r: &Rejection) -> String {
    match r {
        Rejection::Undecodable => "the packet does not decode on its own".into(),
        Rejection::NotKeyFrame => "the decoder does not mark the frame as a key frame".into(),
        Rejection::SeekFailed(e) => format!("seeking to it fails ({e})"),
        Rejection::SameLanding => {
            "seeking to it lands where the previous key frame's seek did".into()
        }
        Rejection::Unreachable {
            landing_number: Some(n),
        } => {
            format!("seeking to it lands at frame {n}, too far from it")
        }
        Rejection::Unreachable {
            landing_number: None,
        } => "seeking to it lands nowhere usable".into(),
    }
}

fn validate(a: ValidateArgs) -> Result<i32, ManifestError> {
    crate::media::image::set_max_pixels(a.max_image_pixels);
    let mut path = a.manifest.clone();
    if path.is_dir() {
        path = path.join(manifest::MANIFEST_FILE);
    }
    let opts = ValidateOptions {
        checksums: a.checksums,
        color: a.color.into(),
    };
    let (m, findings) = manifest::validate(&path, a.media.as_deref(), &opts)?;
    let mut errors = 0;
    for f in &findings {
        match f.severity {
            Severity::Error => {
                errors += 1;
                eprintln!("error: {}", f.message);
            }
            Severity::Warning => eprintln!("warning: {}", f.message),
        }
    }
    if errors > 0 {
        return Ok(1);
    }
    let against = match &a.media {
        Some(p) => format!(", matches {}", p.display()),
        None => String::new(),
    };
    println!(
        "{}: valid {} manifest, {} item(s){against}",
        path.display(),
        m.kind(),
        m.len()
    );
    Ok(0)
}

/// Facts about a video for `manifest info`.
#[derive(serde::Serialize)]
struct InfoReport {
    file: String,
    container: String,
    codec: String,
    width: u32,
    height: u32,
    display_width: u32,
    display_height: u32,
    rotation: f64,
    pixel_format: String,
    color_space: String,
    color_range: String,
    time_base: String,
    frame_rate: Option<f64>,
    duration_s: Option<f64>,
    frames: u64,
    container_frames: Option<u64>,
    key_frames: u64,
    largest_gop: u64,
    mean_gop: f64,
    b_frames: bool,
    packets_without_pts: u64,
    decode_ms_per_frame: Option<f64>,
    worst_random_access_ms: Option<f64>,
    cvat_needs_force: bool,
}

fn info(a: InfoArgs) -> Result<i32, ManifestError> {
    let mut src = VideoSource::open(&a.media)?;
    let vi = src.info().clone();
    let mut frames = 0u64;
    let mut keys = Vec::new();
    let mut no_pts = 0u64;
    let mut pts_list = Vec::new();
    src.scan_packets(|p, _| {
        if p.discard {
            return;
        }
        if p.pts.is_none() {
            no_pts += 1;
        }
        pts_list.push((p.pts.or(p.dts).unwrap_or(i64::MAX), p.key));
        frames += 1;
    })?;
    pts_list.sort_by_key(|(t, _)| *t);
    for (n, (_, key)) in pts_list.iter().enumerate() {
        if *key {
            keys.push(n as u64);
        }
    }
    let mut largest = keys.first().copied().unwrap_or(frames);
    for w in keys.windows(2) {
        largest = largest.max(w[1] - w[0]);
    }
    if let Some(&last) = keys.last() {
        largest = largest.max(frames - last);
    }
    // Measure decode speed on the first frames: the worst random access decodes a whole GOP.
    let sample = largest.clamp(1, 120);
    let decode_ms = measure_decode(&a.media, sample);
    let (dw, dh) = vi.display_size();
    let upper = 3 * manifest::DEFAULT_CHUNK_SIZE as u64 + 1;
    let key_manifest: Vec<manifest::KeyFrame> = keys
        .iter()
        .map(|&n| manifest::KeyFrame {
            number: n,
            pts: 0,
            checksum: String::new(),
        })
        .collect();
    let report = InfoReport {
        file: a.media.display().to_string(),
        container: vi.container.clone(),
        codec: vi.codec.clone(),
        width: vi.width,
        height: vi.height,
        display_width: dw,
        display_height: dh,
        rotation: vi.rotation,
        pixel_format: vi.pixel_format.clone(),
        color_space: vi.color_space.clone(),
        color_range: vi.color_range.clone(),
        time_base: vi.time_base.to_string(),
        frame_rate: vi.frame_rate.and_then(|r| r.to_f64()),
        duration_s: vi.duration_s,
        frames,
        container_frames: vi.container_frames,
        key_frames: keys.len() as u64,
        largest_gop: largest,
        mean_gop: if keys.is_empty() {
            frames as f64
        } else {
            frames as f64 / keys.len() as f64
        },
        b_frames: vi.has_b_frames,
        packets_without_pts: no_pts,
        decode_ms_per_frame: decode_ms,
        worst_random_access_ms: decode_ms.map(|ms| ms * largest as f64),
        cvat_needs_force: manifest::first_ratio_violation(&key_manifest, frames, upper).is_some(),
    };
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("serialisable")
        );
        return Ok(0);
    }
    let opt = |v: Option<f64>, unit: &str| {
        v.map(|x| format!("{x:.2}{unit}"))
            .unwrap_or_else(|| "unknown".into())
    };
    println!("file:            {}", report.file);
    println!("container:       {}", report.container);
    println!(
        "codec:           {} ({}, {} {}){}",
        report.codec,
        report.pixel_format,
        report.color_space,
        report.color_range,
        if report.b_frames { ", B-frames" } else { "" }
    );
    println!(
        "resolution:      {}x{}{}",
        report.width,
        report.height,
        if report.rotation != 0.0 {
            format!(" (displayed {}x{}, rotated {}°)", dw, dh, report.rotation)
        } else {
            String::new()
        }
    );
    println!("frame rate:      {}", opt(report.frame_rate, " fps"));
    println!("duration:        {}", opt(report.duration_s, " s"));
    println!(
        "frames:          {}{}",
        report.frames,
        report
            .container_frames
            .filter(|&c| c != frames)
            .map(|c| format!(" (the container claims {c})"))
            .unwrap_or_default()
    );
    println!(
        "key frames:      {} (mean GOP {:.1}, largest GOP {} frames)",
        report.key_frames, report.mean_gop, report.largest_gop
    );
    if no_pts > 0 {
        println!("timestamps:      {no_pts} packets have no pts: frames cannot be numbered reliably; remux first");
    }
    println!("decode speed:    {}", opt(decode_ms, " ms/frame"));
    println!(
        "random access:   worst case decodes {} frames ≈ {}",
        report.largest_gop,
        opt(report.worst_random_access_ms, " ms")
    );
    println!(
        "CVAT:            {}",
        if report.cvat_needs_force {
            "too few key frames: CVAT's tool needs --force, and seeking is slow; consider re-encoding with -g 30..60"
        } else {
            "enough key frames for CVAT's key-frame rule"
        }
    );
    Ok(0)
}

/// Milliseconds per frame to decode the first `n` frames (None if decoding fails).
fn measure_decode(path: &Path, n: u64) -> Option<f64> {
    let mut r = FrameReader::open(path).ok()?;
    let start = Instant::now();
    let mut decoded = 0u64;
    while decoded < n {
        match r.next_frame() {
            Ok(Some(_)) => decoded += 1,
            _ => break,
        }
    }
    (decoded > 0).then(|| start.elapsed().as_secs_f64() * 1000.0 / decoded as f64)
}
