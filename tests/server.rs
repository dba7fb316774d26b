//! The real server (the `frameserver serve` binary on an ephemeral loopback port) driven over
//! HTTP: task creation from a video, images, a zip and the share; chunks and frames compared
//! with the sources; meta; Range; single-flight builds; bad inputs and what they leave behind.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use frameserver::media::{ColorMode, FrameReader, RgbConverter};
use reqwest::blocking::{multipart, Client};
use serde_json::{json, Value};

/// A running server; killed on drop.
struct Server {
    child: Child,
    base: String,
    data: tempfile::TempDir,
    http: Client,
    token: String,
}

const ADMIN_PASSWORD: &str = "admin-test-password";

/// Logs in with a password (session cookie + CSRF), creates a personal access token, and returns
/// a client that sends it as `Authorization: Bearer`.
fn token_client(base: &str, user: &str, password: &str) -> (Client, String) {
    let c = Client::new();
    let r = c
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "login as {user}");
    let cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect();
    let csrf = cookies
        .iter()
        .find_map(|c| c.strip_prefix("csrftoken="))
        .unwrap()
        .to_owned();
    let r = c
        .post(format!("{base}/api/auth/access_tokens"))
        .header("Cookie", cookies.join("; "))
        .header("X-CSRFToken", csrf)
        .json(&json!({"name": "tests"}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let token = r.json::<Value>().unwrap()["value"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut h = reqwest::header::HeaderMap::new();
    h.insert("Authorization", format!("Bearer {token}").parse().unwrap());
    (
        Client::builder()
            .timeout(Duration::from_secs(120))
            .default_headers(h)
            .build()
            .unwrap(),
        token,
    )
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(share: Option<&Path>, extra: &[&str]) -> Server {
        Server::start_in(tempfile::tempdir().unwrap(), share, extra)
    }

    /// Starts on an existing data directory (e.g. one a previous run left).
    fn start_in(data: tempfile::TempDir, share: Option<&Path>, extra: &[&str]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_frameserver"));
        cmd.args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
            .arg(data.path());
        if let Some(s) = share {
            cmd.arg("--share-dir").arg(s);
        }
        cmd.args(extra)
            .env("FRAMESERVER_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().expect("start frameserver");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let base = line
            .trim()
            .strip_prefix("frameserver listening on ")
            .expect("address line")
            .to_owned();
        let (http, token) = token_client(&base, "admin", ADMIN_PASSWORD);
        Server {
            child,
            base,
            data,
            http,
            token,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    fn get(&self, path: &str) -> reqwest::blocking::Response {
        self.http.get(self.url(path)).send().unwrap()
    }

    fn json(&self, path: &str) -> Value {
        let r = self.get(path);
        assert!(r.status().is_success(), "{path}: {}", r.status());
        r.json().unwrap()
    }

    /// Gives a task five images of `testdata/images/set` (two jobs with segments of 3).
    fn attach_five_images(&self, task: i64) {
        let dir = common::testdata().join("images/set");
        let files: Vec<PathBuf> = ["a.jpg", "b9.png", "b10.png", "B2.png", "f.bmp"]
            .iter()
            .map(|f| dir.join(f))
            .collect();
        let rq = self.upload(task, &files, json!({"image_quality": 70}));
        assert_eq!(self.wait(&rq)["status"], "finished");
    }

    fn create_task(&self, name: &str, segment_size: u64) -> i64 {
        let r = self
            .http
            .post(self.url("/api/tasks"))
            .json(&json!({"name": name, "labels": [{"name": "car"}], "segment_size": segment_size}))
            .send()
            .unwrap();
        assert_eq!(r.status(), 201);
        r.json::<Value>().unwrap()["id"].as_i64().unwrap()
    }

    /// Uploads files with the client protocol (Upload-Start, Upload-Multiple, Upload-Finish).
    fn upload(&self, task: i64, files: &[PathBuf], params: Value) -> String {
        let url = self.url(&format!("/api/tasks/{task}/data/"));
        let r = self
            .http
            .post(&url)
            .header("Upload-Start", "true")
            .header("Content-Type", "application/json")
            .send()
            .unwrap();
        assert_eq!(r.status(), 202);
        let mut form = multipart::Form::new().text("image_quality", "70");
        for (i, f) in files.iter().enumerate() {
            form = form.part(
                format!("client_files[{i}]"),
                multipart::Part::file(f).unwrap(),
            );
        }
        let r = self
            .http
            .post(&url)
            .header("Upload-Multiple", "true")
            .multipart(form)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().unwrap_or_default());
        let r = self
            .http
            .post(&url)
            .header("Upload-Finish", "true")
            .json(&params)
            .send()
            .unwrap();
        assert_eq!(r.status(), 202, "{}", r.text().unwrap_or_default());
        r.json::<Value>().unwrap()["rq_id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Creates a TUS upload of `len` bytes named `name` at `url` (expects the 201); returns the
    /// response (its `Location` is where the pieces go).
    fn tus_create(&self, url: &str, name: &str, len: usize) -> reqwest::blocking::Response {
        use base64::Engine;
        let r = self
            .http
            .post(url)
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Length", len.to_string())
            .header(
                "Upload-Metadata",
                format!(
                    "filename {}",
                    base64::engine::general_purpose::STANDARD.encode(name)
                ),
            )
            .send()
            .unwrap();
        assert_eq!(r.status(), 201, "TUS creation at {url}");
        r
    }

    /// Sends one TUS piece to `location` at `offset` (expects the 204).
    fn tus_patch(
        &self,
        location: &str,
        offset: usize,
        piece: &[u8],
    ) -> reqwest::blocking::Response {
        let r = self
            .http
            .patch(location)
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Offset", offset.to_string())
            .header("Content-Type", "application/offset+octet-stream")
            .body(piece.to_vec())
            .send()
            .unwrap();
        assert_eq!(r.status(), 204, "TUS piece at {offset} to {location}");
        r
    }

    /// POSTs to `url` with `header: true` (an import's Upload-Start or Upload-Finish).
    fn post_with(&self, url: &str, header: &str) -> reqwest::blocking::Response {
        self.http.post(url).header(header, "true").send().unwrap()
    }

    /// Expects the 202 of a background request and waits for it to end; returns its final JSON.
    fn wait_accepted(&self, r: reqwest::blocking::Response) -> Value {
        assert_eq!(r.status(), 202, "{}", r.text().unwrap_or_default());
        let rq = r.json::<Value>().unwrap()["rq_id"]
            .as_str()
            .unwrap()
            .to_owned();
        self.wait(&rq)
    }

    /// Polls a request until it ends; returns its final JSON.
    fn wait(&self, rq_id: &str) -> Value {
        let started = Instant::now();
        let path = format!("/api/requests/{}", rq_id.replace(':', "%3A"));
        loop {
            let r = self.json(&path);
            let p = r["progress"].as_f64().unwrap_or(0.0);
            assert!((0.0..=1.0).contains(&p), "progress {p}");
            match r["status"].as_str().unwrap() {
                "finished" | "failed" => return r,
                "queued" | "started" => {}
                other => panic!("bad status {other}"),
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "request {rq_id} did not end"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn bytes(&self, path: &str) -> (reqwest::StatusCode, reqwest::header::HeaderMap, Vec<u8>) {
        let r = self.get(path);
        let (s, h) = (r.status(), r.headers().clone());
        (s, h, r.bytes().unwrap().to_vec())
    }

    fn metric(&self, name: &str) -> f64 {
        let text = self.get("/metrics").text().unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .unwrap_or_else(|| panic!("no metric {name}"))
            .parse()
            .unwrap()
    }

    fn media_dirs(&self) -> usize {
        std::fs::read_dir(self.data.path().join("media"))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

/// RGB24 of every frame of a video (or MP4 chunk bytes), in decoder order.
fn decode_rgb(path: &Path) -> Vec<(u32, u32, Vec<u8>)> {
    let mut r = FrameReader::open(path).unwrap();
    let mut rgb = RgbConverter::new(ColorMode::Untagged);
    let mut out = Vec::new();
    while let Some(f) = r.next_frame().unwrap() {
        out.push(rgb.to_rgb(&f).unwrap());
    }
    out
}

fn decode_mp4_bytes(bytes: &[u8]) -> Vec<(u32, u32, Vec<u8>)> {
    let mut f = tempfile::Builder::new().suffix(".mp4").tempfile().unwrap();
    f.write_all(bytes).unwrap();
    decode_rgb(f.path())
}

fn mean_abs_diff(a: &[u8], b: &[u8]) -> f64 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as i32 - *y as i32).unsigned_abs() as u64)
        .sum::<u64>() as f64
        / a.len() as f64
}

fn zip_entries(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    (0..z.len())
        .map(|i| {
            let mut e = z.by_index(i).unwrap();
            assert_eq!(e.compression(), zip::CompressionMethod::Stored);
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            (e.name().to_owned(), v)
        })
        .collect()
}

fn decode_image(bytes: &[u8]) -> image::RgbImage {
    image::load_from_memory(bytes).unwrap().to_rgb8()
}

#[test]
fn video_task_chunks_frames_and_meta_match_the_source() {
    let s = Server::start(None, &[]);
    let video = common::testdata().join("videos/h264_bframes.mp4");
    let source = decode_rgb(&video);
    let task = s.create_task("video", 40);
    let rq = s.upload(
        task,
        std::slice::from_ref(&video),
        json!({"image_quality": 70, "chunk_size": 20}),
    );
    let r = s.wait(&rq);
    assert_eq!(r["status"], "finished", "{r}");

    // Meta: CVAT's field order and values.
    let meta = s.json(&format!("/api/tasks/{task}/data/meta"));
    let keys: Vec<&str> = meta
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "chapters",
            "chunks_updated_date",
            "chunk_size",
            "size",
            "image_quality",
            "start_frame",
            "stop_frame",
            "frame_filter",
            "frames",
            "deleted_frames",
            "included_frames",
            "storage",
            "cloud_storage_id"
        ]
    );
    assert_eq!(
        (
            meta["size"].as_u64(),
            meta["chunk_size"].as_u64(),
            meta["stop_frame"].as_u64()
        ),
        (Some(90), Some(20), Some(89))
    );
    assert_eq!(
        meta["frames"],
        json!([{"width": 320, "height": 240, "name": "h264_bframes.mp4", "related_files": 0, "has_related_context": false}])
    );
    let t = s.json(&format!("/api/tasks/{task}"));
    assert_eq!(
        (
            t["size"].as_u64(),
            t["mode"].as_str(),
            t["data_original_chunk_type"].as_str()
        ),
        (Some(90), Some("interpolation"), Some("video"))
    );
    // Segments of 40 with CVAT's default video overlap of 5.
    let jobs = s.json(&format!("/api/jobs?task_id={task}&sort=id"));
    let ranges: Vec<(u64, u64)> = jobs["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| {
            (
                j["start_frame"].as_u64().unwrap(),
                j["stop_frame"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ranges, [(0, 39), (35, 74), (70, 89)]);

    // Every original chunk (MP4, near-lossless) decodes to the source frames, in order.
    let mut n = 0;
    for chunk in 0..5 {
        let (st, h, bytes) = s.bytes(&format!(
            "/api/tasks/{task}/data?type=chunk&number={chunk}&quality=original"
        ));
        assert_eq!(st, 200);
        assert_eq!(h["content-type"], "video/mp4");
        assert_eq!(h["accept-ranges"], "bytes");
        assert_eq!(
            h["x-checksum"].to_str().unwrap(),
            frameserver::task::x_checksum(&bytes).to_string()
        );
        for (w, hh, px) in decode_mp4_bytes(&bytes) {
            assert_eq!((w, hh), (source[n].0, source[n].1));
            let d = mean_abs_diff(&px, &source[n].2);
            assert!(
                d < 1.5,
                "original chunk {chunk}, frame {n}: mean abs diff {d}"
            );
            n += 1;
        }
    }
    assert_eq!(n, 90);
    // Original frames are exact (PNG of the decoded frame).
    for f in [0u64, 1, 23, 24, 25, 50, 89] {
        let (st, h, bytes) = s.bytes(&format!(
            "/api/tasks/{task}/data?type=frame&number={f}&quality=original"
        ));
        assert_eq!(
            (st.as_u16(), h["content-type"].to_str().unwrap()),
            (200, "image/png")
        );
        assert_eq!(
            decode_image(&bytes).into_raw(),
            source[f as usize].2,
            "frame {f}"
        );
    }
    // Compressed chunks are MP4 too (use_zip_chunks false), close to the source.
    let (_, _, bytes) = s.bytes(&format!(
        "/api/tasks/{task}/data?type=chunk&number=4&quality=compressed"
    ));
    let frames = decode_mp4_bytes(&bytes);
    assert_eq!(frames.len(), 10);
    assert!(mean_abs_diff(&frames[0].2, &source[80].2) < 6.0);
    // Job chunks by index are per job: job 2 covers frames 35..74.
    let job2 = jobs["results"][1]["id"].as_i64().unwrap();
    let (st, _, bytes) = s.bytes(&format!(
        "/api/jobs/{job2}/data?type=chunk&index=1&quality=original"
    ));
    assert_eq!(st, 200);
    let frames = decode_mp4_bytes(&bytes);
    assert_eq!(frames.len(), 20);
    assert!(mean_abs_diff(&frames[0].2, &source[55].2) < 1.5);
    // Preview.
    let (st, h, bytes) = s.bytes(&format!("/api/tasks/{task}/preview"));
    assert_eq!(
        (st.as_u16(), h["content-type"].to_str().unwrap()),
        (200, "image/jpeg")
    );
    assert_eq!(image::load_from_memory(&bytes).unwrap().width(), 256);
}

#[test]
fn zip_chunks_of_a_video_hold_jpegs_in_frame_order() {
    let s = Server::start(None, &[]);
    let video = common::testdata().join("videos/open_gop.mp4");
    let source = decode_rgb(&video);
    let task = s.create_task("zip", 0);
    let rq = s.upload(
        task,
        &[video],
        json!({"image_quality": 90, "use_zip_chunks": true, "chunk_size": 36}),
    );
    assert_eq!(s.wait(&rq)["status"], "finished");
    let mut n = 0;
    for chunk in 0..3 {
        let (st, h, bytes) = s.bytes(&format!("/api/tasks/{task}/data?type=chunk&number={chunk}"));
        assert_eq!(
            (st.as_u16(), h["content-type"].to_str().unwrap()),
            (200, "application/zip")
        );
        for (i, (name, jpeg)) in zip_entries(&bytes).into_iter().enumerate() {
            assert_eq!(name, format!("{i:06}.jpeg"));
            let d = mean_abs_diff(&decode_image(&jpeg).into_raw(), &source[n].2);
            assert!(d < 4.0, "frame {n}: {d}");
            n += 1;
        }
    }
    assert_eq!(n, 90);
    // A compressed frame is the JPEG of its chunk.
    let (_, h, frame) = s.bytes(&format!("/api/tasks/{task}/data?type=frame&number=40"));
    assert_eq!(h["content-type"], "image/jpeg");
    let (_, _, chunk) = s.bytes(&format!("/api/tasks/{task}/data?type=chunk&number=1"));
    assert_eq!(frame, zip_entries(&chunk)[4].1);
}

#[test]
fn image_task_original_chunks_are_the_files_and_sorting_is_honoured() {
    let s = Server::start(None, &[]);
    let dir = common::testdata().join("images/set");
    let files: Vec<PathBuf> = [
        "b10.png",
        "b9.png",
        "a.jpg",
        "B2.png",
        "c_palette.png",
        "f.bmp",
        "grey.jpg",
    ]
    .iter()
    .map(|f| dir.join(f))
    .collect();
    let task = s.create_task("images", 0);
    let rq = s.upload(
        task,
        &files,
        json!({"image_quality": 80, "chunk_size": 3, "sorting_method": "natural"}),
    );
    assert_eq!(s.wait(&rq)["status"], "finished");
    let meta = s.json(&format!("/api/tasks/{task}/data/meta"));
    let names: Vec<&str> = meta["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "a.jpg",
            "B2.png",
            "b9.png",
            "b10.png",
            "c_palette.png",
            "f.bmp",
            "grey.jpg"
        ]
    );
    assert_eq!(meta["chapters"], Value::Null);
    let mut i = 0;
    for chunk in 0..3 {
        let (_, _, bytes) = s.bytes(&format!(
            "/api/tasks/{task}/data?type=chunk&number={chunk}&quality=original"
        ));
        for (idx, (name, content)) in zip_entries(&bytes).into_iter().enumerate() {
            let ext = Path::new(names[i]).extension().unwrap().to_str().unwrap();
            assert_eq!(name, format!("{idx:06}.{ext}"));
            assert_eq!(
                content,
                std::fs::read(dir.join(names[i])).unwrap(),
                "{}",
                names[i]
            );
            i += 1;
        }
    }
    assert_eq!(i, 7);
    // Compressed: JPEGs close to the decoded originals.
    let (_, _, bytes) = s.bytes(&format!(
        "/api/tasks/{task}/data?type=chunk&number=0&quality=compressed"
    ));
    let entries = zip_entries(&bytes);
    assert_eq!(entries.len(), 3);
    // These test images are noise-like: Pillow's own JPEG q80 of them is off by 3.4 (B2.png)
    // to 15.4 (b10.png) on average; ours must be as close.
    for (i, name, bound) in [(1, "B2.png", 4.0), (2, "b9.png", 15.5)] {
        let original = image::open(dir.join(name)).unwrap().to_rgb8();
        let got = decode_image(&entries[i].1);
        assert_eq!(got.dimensions(), original.dimensions());
        let d = mean_abs_diff(got.as_raw(), original.as_raw());
        assert!(d < bound, "{name} as JPEG q80: mean abs diff {d}");
    }
    // Original frame = the file.
    let (_, h, b) = s.bytes(&format!(
        "/api/tasks/{task}/data?type=frame&number=1&quality=original"
    ));
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(b, std::fs::read(dir.join("B2.png")).unwrap());
}

#[test]
fn zip_archive_and_share_tasks() {
    let share = common::testdata();
    let s = Server::start(Some(&share), &[]);
    // A zip of images, uploaded.
    let tmp = tempfile::tempdir().unwrap();
    let archive = tmp.path().join("images.zip");
    {
        let mut z = zip::ZipWriter::new(std::fs::File::create(&archive).unwrap());
        for f in ["a.jpg", "b9.png", "nested/l.jpg"] {
            z.start_file(
                format!("pics/{f}"),
                zip::write::SimpleFileOptions::default(),
            )
            .unwrap();
            z.write_all(&std::fs::read(share.join("images/set").join(f)).unwrap())
                .unwrap();
        }
        z.start_file("__MACOSX/._a.jpg", zip::write::SimpleFileOptions::default())
            .unwrap();
        z.write_all(b"junk").unwrap();
        z.finish().unwrap();
    }
    let task = s.create_task("zip", 0);
    let rq = s.upload(task, &[archive], json!({"image_quality": 70}));
    assert_eq!(s.wait(&rq)["status"], "finished");
    assert_eq!(s.json(&format!("/api/tasks/{task}"))["size"], 3);
    // A tar.gz of images.
    let tgz = tmp.path().join("images.tar.gz");
    {
        let gz = flate2::write::GzEncoder::new(
            std::fs::File::create(&tgz).unwrap(),
            flate2::Compression::fast(),
        );
        let mut t = tar::Builder::new(gz);
        for f in ["b9.png", "b10.png"] {
            t.append_path_with_name(share.join("images/set").join(f), format!("dir/{f}"))
                .unwrap();
        }
        t.into_inner().unwrap().finish().unwrap();
    }
    let task = s.create_task("tgz", 0);
    let rq = s.upload(
        task,
        &[tgz],
        json!({"image_quality": 70, "sorting_method": "natural"}),
    );
    assert_eq!(s.wait(&rq)["status"], "finished");
    let names: Vec<String> = s.json(&format!("/api/tasks/{task}/data/meta"))["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["dir/b9.png", "dir/b10.png"]);
    // The share: a directory, read in place, with related images. As the web UI does, an
    // (empty) upload session is opened first; it is no upload.
    let task = s.create_task("share", 0);
    let r = s
        .http
        .post(s.url(&format!("/api/tasks/{task}/data")))
        .header("Upload-Start", "true")
        .json(&json!({}))
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let r = s
        .http
        .post(s.url(&format!("/api/tasks/{task}/data")))
        .header("Upload-Finish", "true")
        .json(&json!({"image_quality": 70, "server_files": ["images/set"]}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    let rq = r.json::<Value>().unwrap()["rq_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(s.wait(&rq)["status"], "finished");
    let meta = s.json(&format!("/api/tasks/{task}/data/meta"));
    assert_eq!(meta["storage"], "share");
    assert_eq!(meta["size"], 17);
    let scene = meta["frames"]
        .as_array()
        .unwrap()
        .iter()
        .position(|f| f["name"] == "images/set/scene1.png")
        .unwrap();
    assert_eq!(meta["frames"][scene]["related_files"], 2);
    let (st, h, bytes) = s.bytes(&format!(
        "/api/tasks/{task}/data?type=context_image&number={scene}"
    ));
    assert_eq!(
        (st.as_u16(), h["content-type"].to_str().unwrap()),
        (200, "application/zip")
    );
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    assert_eq!(z.len(), 2);
    assert_eq!(z.by_index(0).unwrap().name(), "ctx_a.jpg");
    // A video from the share.
    let task = s.create_task("share video", 0);
    let r = s
        .http
        .post(s.url(&format!("/api/tasks/{task}/data")))
        .json(&json!({"image_quality": 70, "server_files": ["videos/vp9.webm"]}))
        .send()
        .unwrap();
    let rq = r.json::<Value>().unwrap()["rq_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(s.wait(&rq)["status"], "finished");
    assert_eq!(s.json(&format!("/api/tasks/{task}"))["size"], 90);
    // Escapes are refused up front.
    for bad in [
        "../Cargo.toml",
        "images/../../src",
        "/etc/passwd",
        "nope.png",
    ] {
        let task = s.create_task("escape", 0);
        let r = s
            .http
            .post(s.url(&format!("/api/tasks/{task}/data")))
            .json(&json!({"image_quality": 70, "server_files": [bad]}))
            .send()
            .unwrap();
        assert_eq!(r.status(), 400, "{bad}");
        let msg: Value = r.json().unwrap();
        assert!(msg.is_string(), "{msg}");
    }
}

#[test]
fn data_api_errors_ranges_and_single_flight() {
    let s = Server::start(None, &[]);
    let task = s.create_task("v", 0);
    let rq = s.upload(
        task,
        &[common::testdata().join("videos/vp9.webm")],
        json!({"image_quality": 70, "use_zip_chunks": true, "chunk_size": 30}),
    );
    assert_eq!(s.wait(&rq)["status"], "finished");
    let err = |path: &str| -> (u16, Value) {
        let r = s.get(path);
        (r.status().as_u16(), r.json().unwrap_or(Value::Null))
    };
    assert_eq!(
        err(&format!("/api/tasks/{task}/data?number=0")),
        (400, json!("Data type not specified or has wrong value"))
    );
    assert_eq!(
        err(&format!("/api/tasks/{task}/data?type=chunk")),
        (400, json!("Number is not specified"))
    );
    assert_eq!(
        err(&format!(
            "/api/tasks/{task}/data?type=chunk&number=0&quality=best"
        )),
        (400, json!("Wrong quality value"))
    );
    assert_eq!(
        err(&format!("/api/tasks/{task}/data?type=chunk&number=3")),
        (
            400,
            json!("Invalid chunk number '3'. The chunk number should be in the [0, 2] range")
        )
    );
    assert_eq!(
        err(&format!("/api/tasks/{task}/data?type=frame&number=90")),
        (
            400,
            json!("Invalid frame '90'. The frame number should be in the [0, 89] range")
        )
    );
    assert_eq!(err("/api/tasks/999/data?type=chunk&number=0").0, 404);
    let empty = s.create_task("empty", 0);
    assert_eq!(
        err(&format!("/api/tasks/{empty}/data?type=chunk&number=0")),
        (404, json!({"detail": "Task has no media"}))
    );
    assert_eq!(
        err(&format!("/api/tasks/{empty}/data/meta")),
        (400, json!("Data is not uploaded for the task yet"))
    );
    let job = s.json(&format!("/api/jobs?task_id={task}"))["results"][0]["id"]
        .as_i64()
        .unwrap();
    assert_eq!(
        err(&format!("/api/jobs/{job}/data?type=chunk")),
        (400, json!("Number or Index is not specified"))
    );
    assert_eq!(
        err(&format!("/api/jobs/{job}/data?type=chunk&number=0&index=0")),
        (400, json!("Number and Index cannot be used together"))
    );

    // Single flight: 8 concurrent requests for one uncached chunk build it once.
    let misses = s.metric("frameserver_cache_misses_total");
    let hits = s.metric("frameserver_cache_hits_total");
    let url = s.url(&format!(
        "/api/tasks/{task}/data?type=chunk&number=2&quality=original"
    ));
    let bodies: Vec<Vec<u8>> = std::thread::scope(|sc| {
        let hs: Vec<_> = (0..8)
            .map(|_| sc.spawn(|| s.http.get(&url).send().unwrap().bytes().unwrap().to_vec()))
            .collect();
        hs.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    assert_eq!(s.metric("frameserver_cache_misses_total") - misses, 1.0);
    assert_eq!(s.metric("frameserver_cache_hits_total") - hits, 7.0);

    // Range requests.
    let full = &bodies[0];
    let total = full.len();
    let range = |v: &str| s.http.get(&url).header("Range", v).send().unwrap();
    let r = range("bytes=0-99");
    assert_eq!(r.status(), 206);
    assert_eq!(
        r.headers()["content-range"].to_str().unwrap(),
        format!("bytes 0-99/{total}")
    );
    assert_eq!(r.bytes().unwrap().to_vec(), full[..100]);
    let r = range("bytes=-10");
    assert_eq!(r.bytes().unwrap().to_vec(), full[total - 10..]);
    let r = range(&format!("bytes={total}-"));
    assert_eq!(r.status(), 416);
    assert_eq!(
        r.headers()["content-range"].to_str().unwrap(),
        format!("bytes */{total}")
    );
    assert_eq!(range("bytes=x-y").status(), 400);
    assert_eq!(range("lines=0-1").status(), 200);
    // Trailing slashes are optional.
    assert_eq!(s.get(&format!("/api/tasks/{task}/")).status(), 200);
    assert_eq!(
        s.get(&format!("/api/tasks/{task}/data/meta/")).status(),
        200
    );
}

#[test]
fn bad_uploads_fail_cleanly_and_leave_nothing() {
    let s = Server::start(None, &["--max-upload-size", "5000000"]);
    let bad = common::testdata().join("bad");
    let cases: &[(&str, &str)] = &[
        ("truncated.mp4", "truncated"),
        ("not_media.mp4", "not a media file"),
        ("empty.mp4", "empty"),
        ("audio_only.m4a", ""),
    ];
    for (file, needle) in cases {
        let task = s.create_task(file, 0);
        let url = s.url(&format!("/api/tasks/{task}/data/"));
        let form = multipart::Form::new().text("image_quality", "70").part(
            "client_files[0]",
            multipart::Part::file(bad.join(file)).unwrap(),
        );
        let r = s.http.post(&url).multipart(form).send().unwrap();
        if r.status() == 400 {
            continue; // refused up front (e.g. no media found)
        }
        assert_eq!(r.status(), 202);
        let rq = r.json::<Value>().unwrap()["rq_id"]
            .as_str()
            .unwrap()
            .to_owned();
        let out = s.wait(&rq);
        assert_eq!(out["status"], "failed", "{file}");
        let msg = out["message"].as_str().unwrap();
        assert!(msg.contains(needle) && !msg.contains('\n'), "{file}: {msg}");
        assert_eq!(
            s.get(&format!("/api/tasks/{task}/data/meta")).status(),
            400,
            "{file}: no data attached"
        );
    }
    // Broken images, a zip with path traversal, a zip bomb.
    let tmp = tempfile::tempdir().unwrap();
    let traversal = tmp.path().join("evil.zip");
    {
        let mut z = zip::ZipWriter::new(std::fs::File::create(&traversal).unwrap());
        z.start_file("../../evil.png", zip::write::SimpleFileOptions::default())
            .unwrap();
        z.write_all(b"x").unwrap();
        z.finish().unwrap();
    }
    let bomb = tmp.path().join("bomb.zip");
    {
        let mut z = zip::ZipWriter::new(std::fs::File::create(&bomb).unwrap());
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        z.start_file("zeros.png", opts).unwrap();
        let zeros = vec![0u8; 1 << 20];
        for _ in 0..128 {
            z.write_all(&zeros).unwrap();
        }
        z.finish().unwrap();
    }
    for (file, needle) in [
        (
            // The decoder's reason is kept after the name.
            common::testdata().join("images/bad/broken.png"),
            "failed to parse image file 'broken.png': ",
        ),
        (traversal, ".."),
        (bomb, "compression bomb"),
    ] {
        let task = s.create_task("bad", 0);
        let rq = s.upload(
            task,
            std::slice::from_ref(&file),
            json!({"image_quality": 70}),
        );
        let out = s.wait(&rq);
        assert_eq!(out["status"], "failed", "{}", file.display());
        assert!(
            out["message"].as_str().unwrap().contains(needle),
            "{}: {}",
            file.display(),
            out["message"]
        );
    }
    assert_eq!(s.media_dirs(), 0, "failed creations leave no media behind");
    assert!(
        !s.data.path().join("evil.png").exists()
            && !s.data.path().parent().unwrap().join("evil.png").exists()
    );
    // Too large an upload: 413, and nothing is kept.
    let big = tmp.path().join("big.mp4");
    std::fs::write(&big, vec![0u8; 6_000_000]).unwrap();
    let task = s.create_task("big", 0);
    let form = multipart::Form::new()
        .text("image_quality", "70")
        .part("client_files[0]", multipart::Part::file(&big).unwrap());
    // A separate connection: the server answers before reading the whole body and closes it.
    let mut auth = reqwest::header::HeaderMap::new();
    auth.insert(
        "Authorization",
        format!("Bearer {}", s.token).parse().unwrap(),
    );
    let once = Client::builder()
        .pool_max_idle_per_host(0)
        .default_headers(auth)
        .build()
        .unwrap();
    let r = once
        .post(s.url(&format!("/api/tasks/{task}/data")))
        .multipart(form)
        .send();
    if let Ok(r) = r {
        assert!(r.status() == 413 || r.status() == 400, "{}", r.status());
    }
    // Parameter validation.
    let task = s.create_task("params", 0);
    let url = s.url(&format!("/api/tasks/{task}/data"));
    let post = |body: Value| {
        let r = s.http.post(&url).json(&body).send().unwrap();
        (r.status().as_u16(), r.json::<Value>().unwrap())
    };
    assert_eq!(
        post(json!({"server_files": ["a.png"]})),
        (
            400,
            json!("The 'image_quality' parameter is required for image- and video-based tasks")
        )
    );
    assert_eq!(
        post(json!({"image_quality": 70, "chunk_size": 0, "server_files": ["a.png"]})),
        (400, json!("Chunk size must be a positive integer"))
    );
    assert_eq!(
        post(
            json!({"image_quality": 70, "start_frame": 5, "stop_frame": 2, "server_files": ["a.png"]})
        ),
        (400, json!("Stop frame must be more or equal start frame"))
    );
    assert_eq!(
        post(json!({"image_quality": 70, "frame_filter": "every=2", "server_files": ["a.png"]})),
        (400, json!("Invalid frame filter expression"))
    );
}

#[test]
fn changed_or_missing_sources_and_task_deletion() {
    let share = tempfile::tempdir().unwrap();
    std::fs::copy(
        common::testdata().join("videos/h264_bframes.mp4"),
        share.path().join("v.mp4"),
    )
    .unwrap();
    std::fs::copy(
        common::testdata().join("images/set/b9.png"),
        share.path().join("i.png"),
    )
    .unwrap();
    let s = Server::start(Some(share.path()), &[]);
    let make = |file: &str| {
        let task = s.create_task(file, 0);
        let r = s
            .http
            .post(s.url(&format!("/api/tasks/{task}/data")))
            .json(&json!({"image_quality": 70, "server_files": [file]}))
            .send()
            .unwrap();
        let rq = r.json::<Value>().unwrap()["rq_id"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(s.wait(&rq)["status"], "finished");
        task
    };
    let video = make("v.mp4");
    let img = make("i.png");
    // Items cached (and prefetched) before the sources change.
    let video_items = [
        format!("/api/tasks/{video}/data?type=chunk&number=0"),
        format!("/api/tasks/{video}/data?type=frame&number=1&quality=original"),
        format!("/api/tasks/{video}/preview"),
    ];
    let img_items = [
        format!("/api/tasks/{img}/data?type=chunk&number=0"),
        format!("/api/tasks/{img}/data?type=frame&number=0&quality=compressed"),
    ];
    for u in video_items.iter().chain(&img_items) {
        assert_eq!(s.get(u).status(), 200, "{u}");
    }
    // Change the video; only touch the image (same bytes, new mtime).
    std::fs::write(share.path().join("v.mp4"), b"changed").unwrap();
    std::fs::File::options()
        .append(true)
        .open(share.path().join("i.png"))
        .unwrap()
        .set_modified(std::time::SystemTime::now() - Duration::from_secs(3600))
        .unwrap();
    // Sources are looked at no more than once a second.
    std::thread::sleep(Duration::from_millis(1100));
    for (items, status, needle, name) in [
        (&video_items[..], 409, "changed", "v.mp4"),
        (&img_items[..], 409, "changed", "i.png"),
    ] {
        for u in items {
            let r = s.get(u);
            assert_eq!(r.status(), status, "{u}: cached items are refused too");
            let detail = r.json::<Value>().unwrap()["detail"]
                .as_str()
                .unwrap()
                .to_owned();
            assert!(detail.contains(needle), "{u}: {detail}");
            assert!(
                detail.contains(&format!(" {name} ")) && !detail.contains('/'),
                "{u}: the file is named as the task knows it, no server path: {detail}"
            );
        }
    }
    // Exports with images read frames through the same path: refused too (video exports used
    // to skip the check).
    for task in [video, img] {
        let (status, r) = post_export(&s, &format!("tasks/{task}"), "CVAT for images 1.1", true);
        assert_eq!(status, 202, "{r}");
        let rq = r["rq_id"].as_str().unwrap();
        let done = s.wait(rq);
        assert_eq!(done["status"], "failed", "task {task}: {done}");
        assert!(
            done["message"].as_str().unwrap().contains("changed"),
            "task {task}: {done}"
        );
    }
    std::fs::remove_file(share.path().join("i.png")).unwrap();
    let r = s.get(&format!("/api/tasks/{img}/data?type=chunk&number=0"));
    assert_eq!(r.status(), 410);
    assert!(r.json::<Value>().unwrap()["detail"]
        .as_str()
        .unwrap()
        .contains("missing"));

    // Deleting a task removes its files and cache entries.
    let local = s.create_task("local", 0);
    let rq = s.upload(
        local,
        &[common::testdata().join("videos/vp9.webm")],
        json!({"image_quality": 70}),
    );
    assert_eq!(s.wait(&rq)["status"], "finished");
    assert_eq!(
        s.bytes(&format!("/api/tasks/{local}/data?type=chunk&number=0"))
            .0,
        200
    );
    let dirs = s.media_dirs();
    assert!(dirs >= 1);
    assert_eq!(
        s.http
            .delete(s.url(&format!("/api/tasks/{local}")))
            .send()
            .unwrap()
            .status(),
        204
    );
    assert_eq!(s.media_dirs(), dirs - 1);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(s.metric("frameserver_cache_entries"), 0.0);
    assert_eq!(s.get(&format!("/api/tasks/{local}")).status(), 404);
}

#[test]
fn sequential_playback_decodes_each_frame_once() {
    let s = Server::start(None, &["--workers", "2"]);
    let task = s.create_task("play", 0);
    // single_keyframe.mp4: 150 frames, one key frame: without positioned readers every chunk
    // would decode from frame 0 again.
    let rq = s.upload(
        task,
        &[common::testdata().join("videos/single_keyframe.mp4")],
        json!({"image_quality": 70, "use_zip_chunks": true, "chunk_size": 10}),
    );
    assert_eq!(s.wait(&rq)["status"], "finished");
    let decoded = s.metric("frameserver_frames_decoded_total");
    let seeks = s.metric("frameserver_seeks_total");
    let mut frames = 0;
    for n in 0..15 {
        let (st, _, bytes) = s.bytes(&format!("/api/tasks/{task}/data?type=chunk&number={n}"));
        assert_eq!(st, 200);
        frames += zip_entries(&bytes).len();
    }
    assert_eq!(frames, 150);
    std::thread::sleep(Duration::from_millis(300));
    let work = s.metric("frameserver_frames_decoded_total") - decoded;
    assert_eq!(
        work, 150.0,
        "each frame decoded once during sequential playback"
    );
    assert!(s.metric("frameserver_seeks_total") - seeks <= 1.0);
    assert!(s.metric("frameserver_chunk_prefetches_total") >= 1.0);
}

#[test]
fn sigterm_shuts_down_gracefully() {
    let mut s = Server::start(None, &[]);
    assert_eq!(s.get("/api/server/about").status(), 200);
    let pid = s.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let started = Instant::now();
    loop {
        if let Some(status) = s.child.try_wait().unwrap() {
            assert!(status.success(), "{status}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no shutdown after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn login_session(base: &str, user: &str, password: &str) -> (u16, Vec<String>) {
    let r = Client::new()
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"username": user, "password": password}))
        .send()
        .unwrap();
    let cookies = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect();
    (r.status().as_u16(), cookies)
}

fn cli_user(s: &Server, args: &[&str], password: &str) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_frameserver"))
        .arg("user")
        .args(args)
        .arg("--data-dir")
        .arg(s.data.path())
        .arg("--password-stdin")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn authentication_sessions_csrf_tokens_and_brute_force() {
    let s = Server::start(None, &[]);
    let anon = Client::new();
    // Public endpoints, and 401 everywhere else without credentials.
    assert_eq!(
        anon.get(s.url("/api/server/about"))
            .send()
            .unwrap()
            .status(),
        200
    );
    assert_eq!(anon.get(s.url("/metrics")).send().unwrap().status(), 200);
    // As in CVAT, the web UI reads these before its login page.
    for path in ["/api/schema", "/api/user-agreements", "/api/server/health"] {
        assert_eq!(
            anon.get(s.url(path)).send().unwrap().status(),
            200,
            "{path}"
        );
    }
    for path in [
        "/api/tasks",
        "/api/users/self",
        "/api/jobs",
        "/api/requests",
        "/api/issues",
        "/api/tasks/1/data/meta",
    ] {
        assert_eq!(
            anon.get(s.url(path)).send().unwrap().status(),
            401,
            "{path}"
        );
    }
    assert_eq!(
        anon.get(s.url("/api/tasks"))
            .header("Authorization", "Bearer nope")
            .send()
            .unwrap()
            .status(),
        401
    );
    // Cookie session: reads work, writes need X-CSRFToken.
    let (st, cookies) = login_session(&s.base, "admin", ADMIN_PASSWORD);
    assert_eq!(st, 200);
    assert!(
        cookies.iter().any(|c| c.starts_with("sessionid="))
            && cookies.iter().any(|c| c.starts_with("csrftoken="))
    );
    let csrf = cookies
        .iter()
        .find_map(|c| c.strip_prefix("csrftoken="))
        .unwrap()
        .to_owned();
    let cookie = cookies.join("; ");
    let me = anon
        .get(s.url("/api/users/self"))
        .header("Cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(me.json::<Value>().unwrap()["username"], "admin");
    let body = json!({"name": "t", "labels": []});
    let r = anon
        .post(s.url("/api/tasks"))
        .header("Cookie", &cookie)
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 403, "no CSRF token");
    let r = anon
        .post(s.url("/api/tasks"))
        .header("Cookie", &cookie)
        .header("X-CSRFToken", "wrong")
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 403, "wrong CSRF token");
    let r = anon
        .post(s.url("/api/tasks"))
        .header("Cookie", &cookie)
        .header("X-CSRFToken", &csrf)
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    // Logout ends the session.
    let r = anon
        .post(s.url("/api/auth/logout"))
        .header("Cookie", &cookie)
        .header("X-CSRFToken", &csrf)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        anon.get(s.url("/api/users/self"))
            .header("Cookie", &cookie)
            .send()
            .unwrap()
            .status(),
        401
    );
    // Tokens: listed, self, revoked → 401; expired → 401.
    let tokens = s.json("/api/auth/access_tokens");
    assert_eq!(tokens["count"], 1);
    assert_eq!(s.json("/api/auth/access_tokens/self")["name"], "tests");
    let create = |body: Value| {
        s.http
            .post(s.url("/api/auth/access_tokens"))
            .json(&body)
            .send()
            .unwrap()
    };
    let t = create(json!({"name": "short"})).json::<Value>().unwrap();
    let bearer = |v: &str| {
        anon.get(s.url("/api/users/self"))
            .header("Authorization", format!("Bearer {v}"))
            .send()
            .unwrap()
            .status()
    };
    assert_eq!(bearer(t["value"].as_str().unwrap()), 200);
    assert_eq!(
        s.http
            .delete(s.url(&format!("/api/auth/access_tokens/{}", t["id"])))
            .send()
            .unwrap()
            .status(),
        204
    );
    assert_eq!(bearer(t["value"].as_str().unwrap()), 401, "revoked token");
    assert_eq!(
        create(json!({"name": "past", "expiry_date": "2001-01-01T00:00:00Z"})).status(),
        400
    );
    let soon = (chrono::Utc::now() + chrono::Duration::milliseconds(1500)).to_rfc3339();
    let t = create(json!({"name": "soon", "expiry_date": soon}))
        .json::<Value>()
        .unwrap();
    assert_eq!(bearer(t["value"].as_str().unwrap()), 200);
    std::thread::sleep(Duration::from_millis(1800));
    assert_eq!(bearer(t["value"].as_str().unwrap()), 401, "expired token");
    // Brute force: wrong passwords get 400, then a lockout with Retry-After.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        statuses.push(login_session(&s.base, "admin", "wrong-password").0);
    }
    assert_eq!(&statuses[..5], &[400; 5]);
    assert_eq!(statuses[5], 429);
    assert_eq!(
        login_session(&s.base, "admin", ADMIN_PASSWORD).0,
        429,
        "locked out even with the right password"
    );
}

#[test]
fn users_see_only_their_tasks_and_the_user_command_works() {
    let s = Server::start(None, &[]);
    let out = cli_user(&s, &["create", "alice"], "alice-password");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dup = cli_user(&s, &["create", "alice"], "alice-password");
    assert_eq!(dup.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&dup.stderr).contains("already exists"));
    let short = cli_user(&s, &["create", "bob"], "short");
    assert_eq!(short.status.code(), Some(1));
    let list = Command::new(env!("CARGO_BIN_EXE_frameserver"))
        .args(["user", "list", "--data-dir"])
        .arg(s.data.path())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&list.stdout);
    assert!(
        text.contains("admin\tadmin") && text.contains("alice\tuser"),
        "{text}"
    );

    let (alice, _) = token_client(&s.base, "alice", "alice-password");
    let admin_task = s.create_task("admin's", 0);
    let alice_task = alice
        .post(s.url("/api/tasks"))
        .json(&json!({"name": "alice's", "labels": [{"name": "cat"}]}))
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap();
    assert_eq!(alice_task["owner"]["username"], "alice");
    let alice_id = alice_task["id"].as_i64().unwrap();
    // Alice cannot see, change or delete the admin's task: it does not exist for her.
    assert_eq!(
        alice
            .get(s.url(&format!("/api/tasks/{admin_task}")))
            .send()
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        alice
            .patch(s.url(&format!("/api/tasks/{admin_task}")))
            .json(&json!({"name": "x"}))
            .send()
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        alice
            .delete(s.url(&format!("/api/tasks/{admin_task}")))
            .send()
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        alice
            .get(s.url(&format!("/api/labels?task_id={admin_task}")))
            .send()
            .unwrap()
            .status(),
        404
    );
    let hers = alice
        .get(s.url("/api/tasks"))
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap();
    assert_eq!(hers["count"], 1);
    // The admin sees both; assigning the admin's task to alice shows it to her.
    assert_eq!(s.json("/api/tasks")["count"], 2);
    assert_eq!(s.json(&format!("/api/tasks/{alice_id}"))["name"], "alice's");
    let alice_user = s.json("/api/users")["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "alice")
        .unwrap()["id"]
        .clone();
    let r = s
        .http
        .patch(s.url(&format!("/api/tasks/{admin_task}")))
        .json(&json!({"assignee_id": alice_user}))
        .send()
        .unwrap();
    assert_eq!(r.json::<Value>().unwrap()["assignee"]["username"], "alice");
    assert_eq!(
        alice
            .get(s.url(&format!("/api/tasks/{admin_task}")))
            .send()
            .unwrap()
            .status(),
        200
    );
    // passwd: the old password stops working.
    let out = cli_user(&s, &["passwd", "alice"], "new-alice-password");
    assert!(out.status.success());
    assert_eq!(login_session(&s.base, "alice", "alice-password").0, 400);
    assert_eq!(login_session(&s.base, "alice", "new-alice-password").0, 200);
}

#[test]
fn labels_get_ids_and_patches_follow_cvat() {
    let s = Server::start(None, &[]);
    let r = s
        .http
        .post(s.url("/api/tasks"))
        .json(&json!({"name": "l", "labels": [
            {"name": "car", "color": "#ff0000", "attributes": [{"name": "color", "mutable": false, "input_type": "select", "values": ["red", "blue"], "default_value": "red"}]},
            {"name": "body", "type": "skeleton", "svg": "<line x1=\"1\"/>", "sublabels": [{"name": "head", "type": "points"}, {"name": "tail", "type": "points"}]}
        ]}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let task = r.json::<Value>().unwrap()["id"].as_i64().unwrap();
    let labels = s.json(&format!("/api/labels?task_id={task}&org=&page=1"));
    assert_eq!(labels["count"], 2);
    let car = &labels["results"][0];
    assert!(car["id"].is_i64() && car["attributes"][0]["id"].is_i64());
    assert_eq!(car["attributes"][0]["values"], json!(["red", "blue"]));
    assert_eq!(car["type"], "any");
    let body = &labels["results"][1];
    assert_eq!(body["sublabels"].as_array().unwrap().len(), 2);
    assert_eq!(body["sublabels"][0]["has_parent"], true);
    // PATCH: rename car, add truck, delete body.
    let patch = json!({"labels": [
        {"id": car["id"], "name": "auto", "color": "#00ff00", "attributes": [{"id": car["attributes"][0]["id"], "name": "color", "input_type": "select", "values": ["red", "blue", "green"]}]},
        {"name": "truck"},
        {"id": body["id"], "name": "body", "deleted": true}
    ]});
    let before = s.json(&format!("/api/tasks/{task}"))["updated_date"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        s.http
            .patch(s.url(&format!("/api/tasks/{task}")))
            .json(&patch)
            .send()
            .unwrap()
            .status(),
        200
    );
    let after = s.json(&format!("/api/tasks/{task}"))["updated_date"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        after > before,
        "updated_date moves forward: {before} → {after}"
    );
    let names: Vec<String> = s.json(&format!("/api/labels?task_id={task}"))["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["auto", "truck"]);
    // Bad labels: 400 with a reason.
    for bad in [
        json!([{"name": "a"}, {"name": "a"}]),
        json!([{"name": "a", "type": "blob"}]),
    ] {
        let r = s
            .http
            .post(s.url("/api/tasks"))
            .json(&json!({"name": "bad", "labels": bad}))
            .send()
            .unwrap();
        assert_eq!(r.status(), 400);
        assert!(r.json::<Value>().unwrap().is_string());
    }
    let dup = s
        .http
        .patch(s.url(&format!("/api/tasks/{task}")))
        .json(&json!({"labels": [{"name": "truck"}]}))
        .send()
        .unwrap();
    assert_eq!(dup.status(), 400);
}

#[test]
fn tus_uploads_resume_and_create_a_task() {
    let s = Server::start(None, &[]);
    let video = std::fs::read(common::testdata().join("videos/h264_bframes.mp4")).unwrap();
    let task = s.create_task("tus", 0);
    let url = s.url(&format!("/api/tasks/{task}/data/"));
    assert_eq!(
        s.http
            .post(&url)
            .header("Upload-Start", "true")
            .send()
            .unwrap()
            .status(),
        202
    );
    let r = s.tus_create(&url, "/home/u/clip.mp4", video.len());
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("http://127.0.0.1:"),
        "absolute Location: {location}"
    );
    assert_eq!(r.headers()["upload-filename"], "clip.mp4");
    let half = video.len() / 2;
    let patch = |offset: usize, body: &[u8]| {
        s.http
            .patch(&location)
            .header("Tus-Resumable", "1.0.0")
            .header("Upload-Offset", offset.to_string())
            .header("Content-Type", "application/offset+octet-stream")
            .body(body.to_vec())
            .send()
            .unwrap()
    };
    let r = patch(0, &video[..half]);
    assert_eq!(r.status(), 204);
    assert_eq!(
        r.headers()["upload-offset"].to_str().unwrap(),
        half.to_string()
    );
    // A wrong offset is a 409 that says where to resume; HEAD says it too.
    let r = patch(0, &video[half..]);
    assert_eq!(r.status(), 409);
    assert_eq!(
        r.headers()["upload-offset"].to_str().unwrap(),
        half.to_string()
    );
    let r = s.http.head(&location).send().unwrap();
    assert_eq!(
        r.headers()["upload-offset"].to_str().unwrap(),
        half.to_string()
    );
    assert_eq!(patch(half, &video[half..]).status(), 204);
    let r = s
        .http
        .post(&url)
        .header("Upload-Finish", "true")
        .json(&json!({"image_quality": 70}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    let rq = r.json::<Value>().unwrap()["rq_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(s.wait(&rq)["status"], "finished");
    assert_eq!(s.json(&format!("/api/tasks/{task}"))["size"], 90);
}

#[test]
fn server_endpoints_and_openapi_schema() {
    let share = common::testdata();
    let s = Server::start(Some(&share), &[]);
    let about = Client::new()
        .get(s.url("/api/server/about"))
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap();
    for k in ["name", "description", "version", "logo_url", "subtitle"] {
        assert!(about[k].is_string(), "{k}");
    }
    assert_eq!(about["version"], "2.80.0");
    let formats = s.json("/api/server/annotation/formats");
    assert!(formats["importers"]
        .as_array()
        .unwrap()
        .iter()
        .any(|f| f["name"] == "CVAT 1.1"));
    assert!(formats["exporters"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["enabled"].is_boolean() && (f["dimension"] == "2d" || f["dimension"] == "3d")));
    // The web UI offers a format for a job of the same dimension.
    let two_d = formats["exporters"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["dimension"] == "2d")
        .count();
    assert_eq!(two_d, 29);
    let listing = s.json("/api/server/share?directory=/");
    // CVAT's media kinds, which the web UI checks a selection of share files against.
    let set = s.json("/api/server/share?directory=images/set/");
    let kinds: Vec<&str> = set
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["mime_type"].as_str().unwrap())
        .collect();
    assert!(
        kinds
            .iter()
            .all(|k| ["image", "DIR", "unknown"].contains(k))
            && kinds.contains(&"image"),
        "{set}"
    );
    let names: Vec<&str> = listing
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"videos") && names.contains(&"images"),
        "{names:?}"
    );
    assert_eq!(
        s.json("/api/server/share?directory=videos")
            .as_array()
            .unwrap()[0]["type"],
        "REG"
    );
    assert_eq!(s.get("/api/server/share?directory=../").status(), 400);
    let schema = s.json("/api/schema/");
    assert!(schema["openapi"].as_str().unwrap().starts_with("3."));
    for p in [
        "/api/tasks",
        "/api/tasks/{id}",
        "/api/tasks/{id}/data",
        "/api/requests/{rq_id}",
        "/api/auth/login",
    ] {
        assert!(
            schema["paths"][p].is_object(),
            "{p} missing from the schema"
        );
    }
}

#[test]
fn annotations_crud_is_validated_transactional_and_job_scoped() {
    let s = Server::start(None, &[]);
    let r = s
        .http
        .post(s.url("/api/tasks"))
        .json(&json!({"name": "ann", "segment_size": 3, "labels": [
            {"name": "car", "attributes": [{"name": "color", "input_type": "select", "values": ["red", "blue"]}]},
            {"name": "person", "type": "rectangle"}
        ]}))
        .send()
        .unwrap();
    let task = r.json::<Value>().unwrap()["id"].as_i64().unwrap();
    s.attach_five_images(task);
    let labels = s.json(&format!("/api/labels?task_id={task}"));
    let car = labels["results"][0]["id"].as_i64().unwrap();
    let color = labels["results"][0]["attributes"][0]["id"]
        .as_i64()
        .unwrap();
    let person = labels["results"][1]["id"].as_i64().unwrap();
    let url = s.url(&format!("/api/tasks/{task}/annotations"));
    let body = json!({
        "tags": [{"label_id": car, "frame": 0, "attributes": [{"spec_id": color, "value": "blue"}]}],
        "shapes": [{"type": "rectangle", "label_id": person, "frame": 1, "points": [1.0, 2.0, 10.0, 20.0]},
                   {"type": "polygon", "label_id": car, "frame": 4, "points": [0, 0, 5, 0, 5, 5]}],
        "tracks": [{"label_id": car, "frame": 0, "shapes": [{"type": "rectangle", "frame": 0, "points": [0, 0, 5, 5]},
                                                          {"type": "rectangle", "frame": 2, "points": [1, 1, 6, 6], "outside": true}]}]
    });
    let before = s.json(&format!("/api/tasks/{task}"))["updated_date"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(s.http.put(&url).json(&body).send().unwrap().status(), 200);
    let got = s.json(&format!("/api/tasks/{task}/annotations/"));
    assert_eq!(got["tags"].as_array().unwrap().len(), 1);
    assert_eq!(got["shapes"].as_array().unwrap().len(), 2);
    assert_eq!(got["tracks"][0]["shapes"].as_array().unwrap().len(), 2);
    let shape = &got["shapes"][0];
    assert!(
        shape["id"].is_i64()
            && shape["source"] == "manual"
            && shape["rotation"] == 0.0
            && shape["occluded"] == false
    );
    assert!(got["tracks"][0]["shapes"][1]["id"].is_i64());
    assert!(
        s.json(&format!("/api/tasks/{task}"))["updated_date"]
            .as_str()
            .unwrap()
            > before.as_str()
    );
    // A bad request changes nothing and says where the problem is.
    let bad = json!({"shapes": [{"type": "rectangle", "label_id": person, "frame": 0, "points": [1, 2, 3, 4]},
                               {"type": "rectangle", "label_id": 9999, "frame": 0, "points": [1, 2, 3, 4]}]});
    let r = s.http.put(&url).json(&bad).send().unwrap();
    assert_eq!(r.status(), 400);
    assert!(r
        .json::<Value>()
        .unwrap()
        .as_str()
        .unwrap()
        .contains("shapes[1]: unknown label id 9999"));
    assert_eq!(s.json(&format!("/api/tasks/{task}/annotations")), got);
    let r = s
        .http
        .put(&url)
        .body("{not json")
        .header("Content-Type", "application/json")
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(s.json(&format!("/api/tasks/{task}/annotations")), got);
    // PATCH create / update / delete.
    let created = s
        .http
        .patch(format!("{url}?action=create"))
        .json(
            &json!({"shapes": [{"type": "points", "label_id": car, "frame": 3, "points": [1, 1]}]}),
        )
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap();
    let new_id = created["shapes"][0]["id"].as_i64().unwrap();
    let mut moved = created["shapes"][0].clone();
    moved["points"] = json!([2.0, 2.0]);
    let r = s
        .http
        .patch(format!("{url}?action=update"))
        .json(&json!({"shapes": [moved]}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let all = s.json(&format!("/api/tasks/{task}/annotations"));
    assert_eq!(
        all["shapes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == new_id)
            .unwrap()["points"],
        json!([2.0, 2.0])
    );
    let r = s.http.patch(format!("{url}?action=delete")).json(&json!({"shapes": [{"id": new_id, "type": "points", "label_id": car, "frame": 3, "points": [2, 2]}]})).send().unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        s.json(&format!("/api/tasks/{task}/annotations"))["shapes"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    assert_eq!(s.http.patch(format!("{url}?action=delete")).json(&json!({"shapes": [{"id": 123456, "type": "points", "label_id": car, "frame": 3, "points": [2, 2]}]})).send().unwrap().status(), 400);
    // Jobs (segments of 3: frames 0-2 and 3-4) see and edit only their frames.
    let jobs = s.json(&format!("/api/jobs?task_id={task}&sort=id"));
    let (j1, j2) = (
        jobs["results"][0]["id"].as_i64().unwrap(),
        jobs["results"][1]["id"].as_i64().unwrap(),
    );
    let a1 = s.json(&format!("/api/jobs/{j1}/annotations"));
    assert_eq!(
        (
            a1["tags"].as_array().unwrap().len(),
            a1["shapes"].as_array().unwrap().len(),
            a1["tracks"].as_array().unwrap().len()
        ),
        (1, 1, 1)
    );
    let a2 = s.json(&format!("/api/jobs/{j2}/annotations"));
    assert_eq!(a2["shapes"].as_array().unwrap().len(), 1);
    let r = s.http.put(s.url(&format!("/api/jobs/{j2}/annotations"))).json(&json!({"shapes": [{"type": "rectangle", "label_id": person, "frame": 0, "points": [1, 2, 3, 4]}]})).send().unwrap();
    assert_eq!(r.status(), 400, "frame 0 is outside job 2");
    assert_eq!(
        s.http
            .delete(s.url(&format!("/api/jobs/{j2}/annotations")))
            .send()
            .unwrap()
            .status(),
        204
    );
    let all = s.json(&format!("/api/tasks/{task}/annotations"));
    assert_eq!(
        (
            all["shapes"].as_array().unwrap().len(),
            all["tags"].as_array().unwrap().len()
        ),
        (1, 1),
        "job 1's objects remain"
    );
    assert_eq!(s.http.delete(&url).send().unwrap().status(), 204);
    assert_eq!(
        s.json(&format!("/api/tasks/{task}/annotations")),
        json!({"version": 0, "tags": [], "shapes": [], "tracks": [], "intervals": []})
    );
}

/// Annotations without ids and `source` (imports mark their objects `file`), sorted, for
/// comparing round trips.
fn normalised(v: &Value) -> Value {
    fn strip(v: &Value) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(k, _)| *k != "id" && *k != "source")
                    .map(|(k, v)| (k.clone(), strip(v)))
                    .collect(),
            ),
            Value::Array(a) => Value::Array(a.iter().map(strip).collect()),
            other => other.clone(),
        }
    }
    let mut out = serde_json::Map::new();
    for key in ["tags", "shapes", "tracks"] {
        let mut items: Vec<Value> = v[key]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .map(strip)
            .collect();
        items.sort_by_key(|x| x.to_string());
        out.insert(key.into(), Value::Array(items));
    }
    Value::Object(out)
}

fn export_zip(s: &Server, task: i64, format: &str, images: bool) -> Vec<u8> {
    let r = s
        .http
        .post(s.url(&format!(
            "/api/tasks/{task}/dataset/export?format={}&save_images={}",
            format.replace(' ', "+"),
            if images { "True" } else { "False" }
        )))
        .header("Content-Type", "application/json")
        .send()
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().unwrap_or_default());
    let rq = r.json::<Value>().unwrap()["rq_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = s.wait(&rq);
    assert_eq!(done["status"], "finished", "{done}");
    let url = done["result_url"].as_str().unwrap().to_owned();
    let r = s.http.get(&url).send().unwrap();
    assert_eq!(r.status(), 200);
    let cd = r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cd.starts_with("attachment; filename=\"") && cd.ends_with(".zip\""),
        "{cd}"
    );
    r.bytes().unwrap().to_vec()
}

fn import_file(s: &Server, task: i64, format: &str, name: &str, bytes: Vec<u8>) -> Value {
    let form = multipart::Form::new().part(
        "annotation_file",
        multipart::Part::bytes(bytes).file_name(name.to_owned()),
    );
    let r = s
        .http
        .post(s.url(&format!(
            "/api/tasks/{task}/annotations?format={}",
            format.replace(' ', "+")
        )))
        .multipart(form)
        .send()
        .unwrap();
    s.wait_accepted(r)
}

fn labelled_task(s: &Server, name: &str, files: &[PathBuf], segment_size: u64) -> (i64, Value) {
    let r = s
        .http
        .post(s.url("/api/tasks"))
        .json(&json!({"name": name, "segment_size": segment_size, "labels": [
            {"name": "car", "attributes": [{"name": "color", "input_type": "select", "values": ["red", "blue"], "default_value": "red"},
                                           {"name": "parked", "mutable": true, "input_type": "checkbox", "values": ["false"]}]},
            {"name": "person", "type": "any"},
            {"name": "body", "type": "skeleton", "svg": "<line x1=\"1\" y1=\"1\" x2=\"2\" y2=\"2\" data-type=\"edge\" data-node-from=\"1\" data-node-to=\"2\"></line><circle r=\"0.75\" cx=\"1\" cy=\"1\" data-type=\"element node\" data-element-id=\"1\" data-node-id=\"1\" data-label-name=\"head\"></circle><circle r=\"0.75\" cx=\"2\" cy=\"2\" data-type=\"element node\" data-element-id=\"2\" data-node-id=\"2\" data-label-name=\"tail\"></circle>",
             "sublabels": [{"name": "head", "type": "points"}, {"name": "tail", "type": "points"}]}
        ]}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let task = r.json::<Value>().unwrap()["id"].as_i64().unwrap();
    let rq = s.upload(task, files, json!({"image_quality": 70}));
    assert_eq!(s.wait(&rq)["status"], "finished");
    let labels = s.json(&format!("/api/labels?task_id={task}"));
    // As CVAT stores it: the skeleton's elements name their sublabels by id.
    let body = labels["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == "body")
        .unwrap();
    let head = body["sublabels"][0]["id"].as_i64().unwrap();
    let svg = body["svg"].as_str().unwrap();
    assert!(
        svg.contains(&format!("data-label-id=\"{head}\"")) && !svg.contains("data-label-name"),
        "{svg}"
    );
    (task, labels)
}

/// Annotations of every kind, with ids of `labels` (a task made by `labelled_task`).
fn rich_annotations(labels: &Value, with_tracks: bool) -> Value {
    let car = &labels["results"][0];
    let (car_id, color, parked) = (
        car["id"].clone(),
        car["attributes"][0]["id"].clone(),
        car["attributes"][1]["id"].clone(),
    );
    let person = labels["results"][1]["id"].clone();
    let body = &labels["results"][2];
    let (body_id, head, tail) = (
        body["id"].clone(),
        body["sublabels"][0]["id"].clone(),
        body["sublabels"][1]["id"].clone(),
    );
    let mut a = json!({
        "tags": [{"label_id": person, "frame": 0, "attributes": []}],
        "shapes": [
            {"type": "rectangle", "label_id": car_id, "frame": 0, "points": [1.5, 2.25, 30.0, 20.0], "rotation": 15.0, "z_order": 1,
             "attributes": [{"spec_id": color, "value": "blue"}, {"spec_id": parked, "value": "true"}]},
            {"type": "polygon", "label_id": person, "frame": 1, "points": [1.0, 1.0, 20.0, 1.0, 10.0, 15.0], "occluded": true},
            {"type": "polyline", "label_id": person, "frame": 1, "points": [0.0, 0.0, 5.0, 5.0, 9.0, 2.0]},
            {"type": "points", "label_id": person, "frame": 2, "points": [3.0, 4.0, 5.0, 6.0]},
            {"type": "ellipse", "label_id": person, "frame": 2, "points": [20.0, 20.0, 30.0, 25.0]},
            {"type": "mask", "label_id": car_id, "frame": 1, "points": [1.0, 4.0, 1.0, 4.0, 5.0, 5.0, 7.0],
             "attributes": [{"spec_id": color, "value": "red"}, {"spec_id": parked, "value": "false"}]},
            {"type": "skeleton", "label_id": body_id, "frame": 0, "points": [], "elements": [
                {"type": "points", "label_id": head, "frame": 0, "points": [10.0, 10.0]},
                {"type": "points", "label_id": tail, "frame": 0, "points": [12.0, 14.0], "occluded": true}]}
        ],
        "tracks": []
    });
    if with_tracks {
        a["tracks"] = json!([{"label_id": car_id, "frame": 0, "attributes": [{"spec_id": color, "value": "red"}], "shapes": [
            {"type": "rectangle", "frame": 0, "points": [0.0, 0.0, 10.0, 10.0], "attributes": [{"spec_id": parked, "value": "false"}]},
            {"type": "rectangle", "frame": 4, "points": [8.0, 4.0, 18.0, 14.0], "attributes": [{"spec_id": parked, "value": "true"}]},
            {"type": "rectangle", "frame": 6, "points": [8.0, 4.0, 18.0, 14.0], "outside": true, "attributes": [{"spec_id": parked, "value": "true"}]}]}]);
    }
    a
}

#[test]
fn exports_and_imports_round_trip_through_the_api() {
    let s = Server::start(None, &[]);
    let dir = common::testdata().join("images/set");
    let files: Vec<PathBuf> = ["a.jpg", "b9.png", "b10.png"]
        .iter()
        .map(|f| dir.join(f))
        .collect();
    let (task, labels) = labelled_task(&s, "source", &files, 0);
    let original = rich_annotations(&labels, false);
    let r = s
        .http
        .put(s.url(&format!("/api/tasks/{task}/annotations")))
        .json(&original)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().unwrap_or_default());
    let stored = s.json(&format!("/api/tasks/{task}/annotations"));
    for (format, import_as, file) in [
        ("CVAT for images 1.1", "CVAT 1.1", "annotations.xml"),
        ("Datumaro 1.0", "Datumaro 1.0", "annotations/default.json"),
    ] {
        for images in [false, true] {
            let zip_bytes = export_zip(&s, task, format, images);
            let names: Vec<String> = zip_entries_any(&zip_bytes)
                .into_iter()
                .map(|(n, _)| n)
                .collect();
            assert!(names.iter().any(|n| n == file), "{format}: {names:?}");
            assert_eq!(
                names.iter().filter(|n| n.starts_with("images/")).count(),
                if images { 3 } else { 0 },
                "{format} images={images}: {names:?}"
            );
            let (fresh, _) = labelled_task(&s, "copy", &files, 0);
            let out = import_file(&s, fresh, import_as, "export.zip", zip_bytes);
            assert_eq!(out["status"], "finished", "{format}: {out}");
            // Label and attribute ids differ between the tasks: compare by mapping through names.
            let got = s.json(&format!("/api/tasks/{fresh}/annotations"));
            assert_eq!(
                renamed(&got, &s, fresh),
                renamed(&stored, &s, task),
                "{format} images={images}"
            );
        }
    }
    // A broken file fails the request and leaves the annotations alone.
    let out = import_file(
        &s,
        task,
        "CVAT 1.1",
        "bad.xml",
        b"<annotations><version>1.1</version><image id=\"0\" name=\"a.jpg\"><box label=\"nope\""
            .to_vec(),
    );
    assert_eq!(out["status"], "failed");
    assert!(
        out["message"].as_str().unwrap().contains("bad.xml"),
        "{out}"
    );
    assert_eq!(s.json(&format!("/api/tasks/{task}/annotations")), stored);
    let r = s
        .http
        .post(s.url(&format!("/api/tasks/{task}/dataset/export?format=Nope+1.0")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
}

/// Inserts, before every `outside` shape of `tracks` that follows a visible one more than one
/// frame earlier, a copy of that visible shape on the frame before the `outside` one.
fn close_last_intervals(tracks: &mut Value) {
    for t in tracks.as_array_mut().unwrap() {
        let shapes = t["shapes"].as_array().unwrap().clone();
        let mut out: Vec<Value> = Vec::new();
        for (i, sh) in shapes.iter().enumerate() {
            if i > 0 && sh["outside"] == true && shapes[i - 1]["outside"] == false {
                let prev = &shapes[i - 1];
                let last = sh["frame"].as_u64().unwrap() - 1;
                if prev["frame"].as_u64().unwrap() < last {
                    let mut k = prev.clone();
                    k["frame"] = json!(last);
                    out.push(k);
                }
            }
            out.push(sh.clone());
        }
        t["shapes"] = Value::Array(out);
    }
}

#[test]
fn tracks_round_trip_through_cvat_for_video_and_datumaro() {
    let s = Server::start(None, &[]);
    let video = common::testdata().join("videos/h264_bframes.mp4");
    let (task, labels) = labelled_task(&s, "video", std::slice::from_ref(&video), 0);
    // Datumaro keeps everything; CVAT for video turns plain shapes into one-frame tracks and has
    // no tags, so its round trip is checked on tracks alone.
    let everything = rich_annotations(&labels, true);
    let mut tracks_only = everything.clone();
    tracks_only["tags"] = json!([]);
    tracks_only["shapes"] = json!([]);
    for (format, import_as, original) in [
        ("Datumaro 1.0", "Datumaro 1.0", &everything),
        ("CVAT for video 1.1", "CVAT 1.1", &tracks_only),
    ] {
        let r = s
            .http
            .put(s.url(&format!("/api/tasks/{task}/annotations")))
            .json(original)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().unwrap_or_default());
        let stored = s.json(&format!("/api/tasks/{task}/annotations"));
        let zip_bytes = export_zip(&s, task, format, false);
        let (fresh, _) = labelled_task(&s, "copy", std::slice::from_ref(&video), 0);
        let out = import_file(&s, fresh, import_as, "export.zip", zip_bytes);
        assert_eq!(out["status"], "finished", "{format}: {out}");
        let got = s.json(&format!("/api/tasks/{fresh}/annotations"));
        let (g, mut e) = (renamed(&got, &s, fresh), renamed(&stored, &s, task));
        if format == "Datumaro 1.0" {
            // Datumaro stores frames, not keyframes: on import the last visible frame before
            // each `outside` becomes a keyframe (CVAT's `_close_last_interval`), same geometry.
            close_last_intervals(&mut e["tracks"]);
        }
        assert_eq!(g["tracks"], e["tracks"], "{format}: tracks");
        assert_eq!(g, e, "{format}");
    }
    // With images: video frames named as CVAT names them, PNG by default, JPEG on request.
    let zip_bytes = export_zip(&s, task, "CVAT for images 1.1", true);
    let names: Vec<String> = zip_entries_any(&zip_bytes)
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert!(
        names.contains(&"images/frame_000000.PNG".to_owned())
            && names.contains(&"images/frame_000089.PNG".to_owned()),
        "{names:?}"
    );
    let png = zip_entries_any(&zip_bytes)
        .into_iter()
        .find(|(n, _)| n == "images/frame_000042.PNG")
        .unwrap()
        .1;
    let source = decode_rgb(&video);
    assert_eq!(
        decode_image(&png).into_raw(),
        source[42].2,
        "exported frames are exact"
    );
}

/// Stored-or-deflated zip entries.
fn zip_entries_any(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    frameserver::formats::testkit::zip_entries_of(std::io::Cursor::new(bytes))
}

/// Annotations with label and attribute ids replaced by names (tasks differ in ids).
fn renamed(a: &Value, s: &Server, task: i64) -> Value {
    let labels = s.json(&format!("/api/labels?task_id={task}"));
    let mut names = std::collections::HashMap::new();
    let mut attrs = std::collections::HashMap::new();
    fn walk(
        l: &Value,
        names: &mut std::collections::HashMap<i64, String>,
        attrs: &mut std::collections::HashMap<i64, String>,
    ) {
        names.insert(
            l["id"].as_i64().unwrap(),
            l["name"].as_str().unwrap().to_owned(),
        );
        for a in l["attributes"].as_array().unwrap() {
            attrs.insert(
                a["id"].as_i64().unwrap(),
                a["name"].as_str().unwrap().to_owned(),
            );
        }
        for sl in l["sublabels"].as_array().unwrap() {
            walk(sl, names, attrs);
        }
    }
    for l in labels["results"].as_array().unwrap() {
        walk(l, &mut names, &mut attrs);
    }
    fn map(
        v: &Value,
        names: &std::collections::HashMap<i64, String>,
        attrs: &std::collections::HashMap<i64, String>,
    ) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .map(|(k, v)| match (k.as_str(), v.as_i64()) {
                        ("label_id", Some(id)) => (k.clone(), Value::from(names[&id].clone())),
                        ("spec_id", Some(id)) => (k.clone(), Value::from(attrs[&id].clone())),
                        _ => (k.clone(), map(v, names, attrs)),
                    })
                    .collect(),
            ),
            Value::Array(a) => {
                let mut items: Vec<Value> = a.iter().map(|x| map(x, names, attrs)).collect();
                if items.iter().all(|x| x.get("spec_id").is_some()) {
                    items.sort_by_key(|x| x.to_string());
                }
                Value::Array(items)
            }
            other => other.clone(),
        }
    }
    normalised(&map(a, &names, &attrs))
}

#[test]
fn exports_of_deleted_tasks_are_cancelled_and_removed() {
    let s = Server::start(None, &[]);
    let video = common::shared().join("videos/cup.mp4");
    let (task, _) = labelled_task(&s, "doomed", &[video], 0);
    let exports = s.data.path().join("exports");
    let files = || std::fs::read_dir(&exports).map(|d| d.count()).unwrap_or(0);
    // A finished export, then one with every frame as PNG that is still running at the delete.
    let export = |images: bool| -> String {
        let r = s
            .http
            .post(s.url(&format!(
                "/api/tasks/{task}/dataset/export?format=CVAT+for+video+1.1&save_images={images}"
            )))
            .send()
            .unwrap();
        assert_eq!(r.status(), 202);
        r.json::<Value>().unwrap()["rq_id"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let done = s.wait(&export(false));
    assert_eq!(done["status"], "finished", "{done}");
    let url = done["result_url"].as_str().unwrap().to_owned();
    assert_eq!(s.http.get(&url).send().unwrap().status(), 200);
    let running = export(true);
    std::thread::sleep(Duration::from_millis(300));
    let r = s
        .http
        .delete(s.url(&format!("/api/tasks/{task}")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        s.http.get(&url).send().unwrap().status(),
        404,
        "a finished result of a deleted task is not served"
    );
    let end = s.wait(&running);
    if end["status"] == "failed" {
        assert!(
            end["message"].as_str().unwrap().contains("deleted"),
            "{end}"
        );
    } else {
        let url = end["result_url"].as_str().unwrap();
        assert_eq!(s.http.get(url).send().unwrap().status(), 404);
    }
    assert_eq!(files(), 0, "no result, name or .part file is left");
}

#[test]
fn interrupted_exports_and_abandoned_uploads_are_cleaned() {
    // A `.zip.part` left by a killed export is removed at start.
    let data = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(data.path().join("exports")).unwrap();
    let stray = data.path().join("exports/0123abcd.zip.part");
    std::fs::write(&stray, b"half an export").unwrap();
    let s = Server::start_in(data, None, &["--upload-idle-timeout", "2"]);
    assert!(
        !stray.exists(),
        "the interrupted export's .zip.part is removed"
    );

    // An upload session and a TUS upload nobody finishes are dropped after the idle timeout.
    let task = s.create_task("abandoned", 0);
    let url = s.url(&format!("/api/tasks/{task}/data/"));
    let r = s
        .http
        .post(&url)
        .header("Upload-Start", "true")
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    let form = multipart::Form::new().part(
        "client_files[0]",
        multipart::Part::file(common::testdata().join("videos/h264_bframes.mp4")).unwrap(),
    );
    let r = s
        .http
        .post(&url)
        .header("Upload-Multiple", "true")
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s.tus_create(&url, "b.mp4", 1000);
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let uploads = s.data.path().join("uploads");
    let held = || walk(&uploads);
    fn walk(p: &Path) -> usize {
        std::fs::read_dir(p)
            .map(|d| {
                d.flatten()
                    .map(|e| {
                        if e.path().is_dir() {
                            walk(&e.path())
                        } else {
                            1
                        }
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    assert_eq!(held(), 2, "the session's file and the TUS file");
    let started = Instant::now();
    while held() > 0 && started.elapsed() < Duration::from_secs(20) {
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(held(), 0, "abandoned uploads are removed");
    let r = s
        .http
        .head(&location)
        .header("Tus-Resumable", "1.0.0")
        .send()
        .unwrap();
    assert_eq!(r.status(), 404, "the TUS upload is gone");
    let r = s
        .http
        .post(&url)
        .header("Upload-Finish", "true")
        .json(&json!({"image_quality": 70}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("No media data found"));
}

#[test]
fn names_chunk_sizes_and_attributes_have_cvat_caps() {
    let s = Server::start(None, &[]);
    let post = |body: Value| s.http.post(s.url("/api/tasks")).json(&body).send().unwrap();
    let r = post(json!({"name": "n".repeat(257), "labels": [{"name": "car"}]}));
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("no more than 256 characters"));
    assert_eq!(
        post(json!({"name": "n".repeat(256), "labels": [{"name": "car"}]})).status(),
        201
    );
    let r = post(
        json!({"name": "t", "labels": [{"name": "car", "attributes": [
        {"name": "a".repeat(65), "input_type": "text"}]}]}),
    );
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("at most 64 characters"));
    let task = s.create_task("chunks", 0);
    let r = s
        .http
        .patch(s.url(&format!("/api/tasks/{task}")))
        .json(&json!({"subset": "s".repeat(65)}))
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    let form = multipart::Form::new()
        .text("image_quality", "70")
        .text("chunk_size", "1001")
        .part(
            "client_files[0]",
            multipart::Part::file(common::testdata().join("videos/h264_bframes.mp4")).unwrap(),
        );
    let r = s
        .http
        .post(s.url(&format!("/api/tasks/{task}/data/")))
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(r.status(), 400);
    let text = r.text().unwrap();
    assert!(text.contains("more than the limit of 1000"), "{text}");
}

/// A client whose connections come from `from` (another loopback address: 127.0.0.0/8 is all
/// local, so each one is "another client" to the server).
fn client_from(from: &str) -> Client {
    Client::builder()
        .local_address(from.parse::<std::net::IpAddr>().unwrap())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

fn login_from(c: &Client, base: &str, user: &str, password: &str, xff: Option<&str>) -> u16 {
    let mut rq = c
        .post(format!("{base}/api/auth/login"))
        .json(&json!({"username": user, "password": password}));
    if let Some(x) = xff {
        rq = rq.header("X-Forwarded-For", x);
    }
    rq.send().unwrap().status().as_u16()
}

/// Issue 18 item 3: failures lock the (name, address) pair, never an address for every account
/// nor a name for every address.
#[test]
fn login_lockout_is_per_account_and_address() {
    let s = Server::start(None, &["--trusted-proxies", "127.0.0.3"]);
    assert!(cli_user(&s, &["create", "alice"], "alice-password")
        .status
        .success());
    let attacker = client_from("127.0.0.2");
    // Six wrong admin passwords from one address: the sixth is refused (429, Retry-After).
    let statuses: Vec<u16> = (0..6)
        .map(|_| login_from(&attacker, &s.base, "admin", "wrong", None))
        .collect();
    assert_eq!(statuses, [400, 400, 400, 400, 400, 429]);
    let r = attacker
        .post(s.url("/api/auth/login"))
        .json(&json!({"username": "admin", "password": ADMIN_PASSWORD}))
        .send()
        .unwrap();
    assert_eq!(
        r.status(),
        429,
        "the locked pair is refused even with the password"
    );
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((250..=300).contains(&retry), "Retry-After {retry}");
    // Twenty more failures from that address over other names (25 in all), in parallel.
    std::thread::scope(|sc| {
        for i in 0..20 {
            let (attacker, base) = (&attacker, &s.base);
            sc.spawn(move || {
                assert_eq!(
                    login_from(attacker, base, &format!("user{i}"), "wrong", None),
                    400
                );
            });
        }
    });
    // A correct password of another account from the same address is let in...
    let started = Instant::now();
    assert_eq!(
        login_from(&attacker, &s.base, "alice", "alice-password", None),
        200,
        "one address's failures lock out its other accounts"
    );
    assert!(started.elapsed() < Duration::from_secs(3), "not delayed");
    // ...and so is admin's from another address.
    assert_eq!(
        login_from(
            &client_from("127.0.0.4"),
            &s.base,
            "admin",
            ADMIN_PASSWORD,
            None
        ),
        200,
        "one address's failures lock the name for everyone"
    );
    // The address's failures are slowed: a wrong password now waits for its answer.
    let started = Instant::now();
    assert_eq!(login_from(&attacker, &s.base, "carol", "wrong", None), 400);
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "failure from a braked address answered in {:?}",
        started.elapsed()
    );

    // Behind the trusted proxy (127.0.0.3), each X-Forwarded-For client counts on its own...
    let proxy = client_from("127.0.0.3");
    std::thread::scope(|sc| {
        for _ in 0..5 {
            sc.spawn(|| {
                assert_eq!(
                    login_from(&proxy, &s.base, "alice", "wrong", Some("203.0.113.7")),
                    400
                )
            });
        }
    });
    assert_eq!(
        login_from(
            &proxy,
            &s.base,
            "alice",
            "alice-password",
            Some("203.0.113.7")
        ),
        429
    );
    assert_eq!(
        login_from(
            &proxy,
            &s.base,
            "alice",
            "alice-password",
            Some("198.51.100.8")
        ),
        200,
        "another client behind the proxy"
    );
    // (the right-most untrusted hop: a client cannot pick its address by prepending one)
    assert_eq!(
        login_from(
            &proxy,
            &s.base,
            "alice",
            "alice-password",
            Some("198.51.100.8, 203.0.113.7")
        ),
        429
    );
    // ...and from anyone else the header is ignored: 127.0.0.5 cannot borrow a clean address.
    let other = client_from("127.0.0.5");
    std::thread::scope(|sc| {
        for i in 0..5 {
            let (other, base) = (&other, &s.base);
            sc.spawn(move || {
                let xff = format!("192.0.2.{i}");
                assert_eq!(login_from(other, base, "alice", "wrong", Some(&xff)), 400)
            });
        }
    });
    assert_eq!(
        login_from(
            &other,
            &s.base,
            "alice",
            "alice-password",
            Some("192.0.2.1")
        ),
        429
    );
}

/// Runs `frameserver serve` with `args` (as `nobody` when `as_nobody`); returns its exit code
/// (`None` if it was still serving after 10 s) and its stderr.
fn serve_exit(data: &Path, args: &[&str], as_nobody: bool) -> (Option<i32>, String) {
    let mut cmd = if as_nobody {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(env!("CARGO_BIN_EXE_frameserver"));
        c
    } else {
        Command::new(env!("CARGO_BIN_EXE_frameserver"))
    };
    let mut child = cmd
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data)
        .args(args)
        .env("FRAMESERVER_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let code = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st.code();
        }
        if started.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    (code, err)
}

#[test]
fn bad_network_flags_and_an_unwritable_data_dir_are_refused_at_start() {
    for (args, expected) in [
        (
            &["--trusted-proxies", "10.0.0.0/8,proxy.local"][..],
            "invalid --trusted-proxies entry 'proxy.local'",
        ),
        (
            &["--public-url", "cvat.example.com"][..],
            "invalid --public-url",
        ),
        (
            &["--public-url", "ftp://x.example"][..],
            "invalid --public-url",
        ),
    ] {
        let data = tempfile::tempdir().unwrap();
        let (code, err) = serve_exit(data.path(), args, false);
        assert_eq!(code, Some(1), "{args:?}: {err}");
        assert!(err.contains(expected), "{args:?}: {err}");
    }

    // A data directory whose database the server's user cannot write: it used to start and
    // answer every login with a 500. (Mode bits do not stop root: then the server runs as
    // nobody on files root made.)
    let root = running_as_root();
    let data = tempfile::tempdir().unwrap();
    let mode = |p: &Path, m: u32| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    };
    let db = data.path().join("db");
    let mut create = Command::new(env!("CARGO_BIN_EXE_frameserver"))
        .args([
            "user",
            "create",
            "admin",
            "--admin",
            "--password-stdin",
            "--data-dir",
        ])
        .arg(&db)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    create
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{ADMIN_PASSWORD}\n").as_bytes())
        .unwrap();
    assert!(create.wait().unwrap().success());
    for f in std::fs::read_dir(&db).unwrap() {
        let f = f.unwrap().path();
        if f.is_file() {
            mode(&f, 0o444);
        }
    }
    mode(data.path(), 0o755);
    mode(&db, 0o777);
    let (code, err) = serve_exit(&db, &[], root);
    assert_eq!(code, Some(1), "served a read-only database: {err}");
    assert!(
        err.contains("error: the data directory") && err.contains("is not writable"),
        "{err}"
    );
    // A directory that cannot be written at all.
    mode(&db, 0o555);
    let (code, err) = serve_exit(&db, &[], root);
    mode(&db, 0o755);
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains(&format!(
            "error: the data directory {} is not writable: Permission denied",
            db.display()
        )),
        "{err}"
    );
}

/// Whether this process runs as root (mode bits do not stop root, so the test switches user).
fn running_as_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .map(|l| l.split_whitespace().nth(2) == Some("0"))
        })
        .unwrap_or(false)
}

#[test]
fn password_change_revokes_tokens_and_sessions_and_bearer_is_case_insensitive() {
    let s = Server::start(None, &[]);
    assert!(cli_user(&s, &["create", "alice"], "alice-password")
        .status
        .success());
    let (_, token) = token_client(&s.base, "alice", "alice-password");
    let (status, cookies) = login_session(&s.base, "alice", "alice-password");
    assert_eq!(status, 200);
    let cookie = cookies.join("; ");
    let anon = Client::new();
    let with_token = |scheme: &str| {
        anon.get(s.url("/api/users/self"))
            .header("Authorization", format!("{scheme} {token}"))
            .send()
            .unwrap()
            .status()
    };
    let with_session = || {
        anon.get(s.url("/api/users/self"))
            .header("Cookie", &cookie)
            .send()
            .unwrap()
            .status()
    };
    // RFC 7235: the scheme is case-insensitive.
    for scheme in ["Bearer", "bearer", "BEARER"] {
        assert_eq!(with_token(scheme), 200, "{scheme}");
    }
    assert_eq!(with_session(), 200);
    // `frameserver user passwd` from another process: the server drops both within its
    // in-memory copies' lifetime (10 s).
    let out = cli_user(&s, &["passwd", "alice"], "new-alice-password");
    assert!(out.status.success());
    let changed = Instant::now();
    while with_token("Bearer") != 401 || with_session() != 401 {
        assert!(
            changed.elapsed() < Duration::from_secs(12),
            "token {} / session {} still accepted {:?} after passwd",
            with_token("Bearer"),
            with_session(),
            changed.elapsed()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(login_session(&s.base, "alice", "new-alice-password").0, 200);
}

#[test]
fn external_urls_come_from_the_public_url_or_a_trusted_proxy_not_any_host_header() {
    // Without configuration: Host, and forwarded headers ignored.
    let s = Server::start(None, &["--trusted-proxies", "127.0.0.3"]);
    let task = s.create_task("urls", 0);
    let url_of = |c: &Client, headers: &[(&str, &str)]| -> String {
        let mut rq = c
            .get(s.url(&format!("/api/tasks/{task}")))
            .header("Authorization", format!("Bearer {}", s.token));
        for (k, v) in headers {
            rq = rq.header(*k, *v);
        }
        let r = rq.send().unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().unwrap()["url"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let forwarded = [
        ("X-Forwarded-Proto", "https"),
        ("X-Forwarded-Host", "cvat.example.com"),
    ];
    let direct = client_from("127.0.0.2");
    assert_eq!(
        url_of(&direct, &forwarded),
        s.url(&format!("/api/tasks/{task}")),
        "forwarded headers from an untrusted peer"
    );
    assert_eq!(
        url_of(&client_from("127.0.0.3"), &forwarded),
        format!("https://cvat.example.com/api/tasks/{task}")
    );
    assert_eq!(
        url_of(
            &client_from("127.0.0.3"),
            &[(
                "Forwarded",
                "for=192.0.2.1;proto=https;host=\"a.example:8443\""
            )]
        ),
        format!("https://a.example:8443/api/tasks/{task}")
    );
    assert_eq!(
        url_of(&direct, &[("Host", "evil.example/x?")]),
        format!("http://localhost/api/tasks/{task}"),
        "a Host that is not host[:port] is not copied"
    );
    drop(s);

    // With --public-url: every stored and returned URL uses it, whatever the request says.
    let s = Server::start(None, &["--public-url", "https://cvat.example.com/"]);
    let task = s.create_task("urls", 0);
    let t = s
        .http
        .get(s.url(&format!("/api/tasks/{task}")))
        .header("Host", "evil.example")
        .send()
        .unwrap()
        .json::<Value>()
        .unwrap();
    assert_eq!(
        t["url"],
        format!("https://cvat.example.com/api/tasks/{task}")
    );
    assert_eq!(t["owner"]["url"], "https://cvat.example.com/api/users/1");
    // TUS Location.
    let data = s.url(&format!("/api/tasks/{task}/data/"));
    s.http
        .post(&data)
        .header("Upload-Start", "true")
        .send()
        .unwrap();
    let r = s
        .http
        .post(&data)
        .header("Host", "evil.example")
        .header("Tus-Resumable", "1.0.0")
        .header("Upload-Length", "10")
        .header("Upload-Metadata", "filename YS5qcGc=")
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let location = r.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with(&format!("https://cvat.example.com/api/tasks/{task}/data/")),
        "{location}"
    );
    // An export's stored result_url.
    let task = s.create_task("export", 0);
    let rq = s.upload(
        task,
        &[common::testdata().join("images/set/a.jpg")],
        json!({"image_quality": 70}),
    );
    assert_eq!(s.wait(&rq)["status"], "finished");
    let r = s
        .http
        .post(s.url(&format!(
            "/api/tasks/{task}/dataset/export?format=CVAT+for+images+1.1&save_images=False"
        )))
        .header("Host", "evil.example")
        .send()
        .unwrap();
    assert_eq!(r.status(), 202);
    let rq = r.json::<Value>().unwrap()["rq_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = s.wait(&rq);
    let result = done["result_url"].as_str().unwrap();
    let path = result
        .strip_prefix("https://cvat.example.com")
        .unwrap_or_else(|| panic!("result_url {result}"));
    assert_eq!(s.get(path).status(), 200);
}

/// Reads one HTTP/1.1 response (headers and a Content-Length body) from `stream`.
fn read_response(stream: &mut std::net::TcpStream) -> (u16, String) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).unwrap();
        assert!(
            n > 0,
            "connection closed mid-response: {:?}",
            String::from_utf8_lossy(&buf)
        );
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap();
    let status = head[9..12].parse().unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).unwrap();
    (status, head + &String::from_utf8_lossy(&body))
}

/// Waits for the server to close `stream`; returns how long that took.
fn closed_after(stream: &mut std::net::TcpStream, limit: Duration) -> Duration {
    let started = Instant::now();
    stream.set_read_timeout(Some(limit)).unwrap();
    let mut sink = [0u8; 1024];
    loop {
        match stream.read(&mut sink) {
            Ok(0) => return started.elapsed(),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return started.elapsed(),
            Err(e) => panic!("not closed within {limit:?}: {e}"),
        }
    }
}

/// Issue 18 item 4: half-open connections are closed after the header timeout, idle keep-alive
/// ones after the idle timeout, and past the cap a new connection gets a 503 while the open
/// ones keep working; slow but moving bodies are not cut.
#[test]
fn connections_are_capped_and_timed_out() {
    use std::net::TcpStream;
    let s = Server::start(
        None,
        &[
            "--max-connections",
            "8",
            "--header-timeout",
            "2",
            "--idle-timeout",
            "4",
        ],
    );
    // `s.http` keeps an idle keep-alive connection from the start: let it expire first.
    std::thread::sleep(Duration::from_millis(4500));
    let addr = s.base.strip_prefix("http://").unwrap().to_owned();
    let about = format!("GET /api/server/about HTTP/1.1\r\nHost: {addr}\r\n\r\n");
    let mut keep = TcpStream::connect(&addr).unwrap();
    keep.write_all(about.as_bytes()).unwrap();
    assert_eq!(read_response(&mut keep).0, 200);
    let mut half_open: Vec<TcpStream> = (0..7)
        .map(|_| {
            let mut c = TcpStream::connect(&addr).unwrap();
            c.write_all(b"GET /api/server/about HTTP/1.1\r\nHost: x\r\n")
                .unwrap();
            c
        })
        .collect();
    let opened = Instant::now();
    std::thread::sleep(Duration::from_millis(200));
    // The ninth connection: a 503 at once, with a reason, and closed.
    let mut extra = TcpStream::connect(&addr).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    extra.write_all(about.as_bytes()).unwrap();
    let (status, text) = read_response(&mut extra);
    assert_eq!(status, 503, "{text}");
    assert!(
        text.contains("Connection: close") && text.contains("limit of 8"),
        "{text}"
    );
    // The open keep-alive connection still works.
    keep.write_all(about.as_bytes()).unwrap();
    assert_eq!(read_response(&mut keep).0, 200);
    let kept_since = Instant::now();
    // The half-open ones are closed after the header timeout (2 s), not before.
    for c in &mut half_open {
        closed_after(c, Duration::from_secs(6));
    }
    let waited = opened.elapsed();
    assert!(
        waited >= Duration::from_millis(1800) && waited < Duration::from_secs(5),
        "half-open connections closed after {waited:?}"
    );
    // Then new connections are served again.
    let mut fresh = TcpStream::connect(&addr).unwrap();
    fresh.write_all(about.as_bytes()).unwrap();
    assert_eq!(read_response(&mut fresh).0, 200);
    // The idle keep-alive connection lasts the idle timeout (4 s), longer than the header one.
    closed_after(&mut keep, Duration::from_secs(8));
    let idle = kept_since.elapsed();
    assert!(
        idle >= Duration::from_millis(3500) && idle < Duration::from_secs(7),
        "idle keep-alive connection closed after {idle:?}"
    );
    drop(fresh);
    // A request body that keeps moving for longer than both timeouts is not cut.
    let body = json!({"username": "admin", "password": "wrong-but-slow"}).to_string();
    let mut slow = TcpStream::connect(&addr).unwrap();
    write!(
        slow,
        "POST /api/auth/login HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    let started = Instant::now();
    for piece in body.as_bytes().chunks(body.len().div_ceil(6)) {
        slow.write_all(piece).unwrap();
        std::thread::sleep(Duration::from_millis(900));
    }
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    assert_eq!(read_response(&mut slow).0, 400);
    assert!(started.elapsed() > Duration::from_millis(4500));
}

/// A deflated zip with one entry: `head`, `mib` MiB of `fill`, then `tail`.
fn zip_with_filler(name: &str, head: &[u8], fill: u8, mib: usize, tail: &[u8]) -> Vec<u8> {
    let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    z.start_file(name, zip::write::SimpleFileOptions::default())
        .unwrap();
    z.write_all(head).unwrap();
    let block = vec![fill; 1 << 20];
    for _ in 0..mib {
        z.write_all(&block).unwrap();
    }
    z.write_all(tail).unwrap();
    z.finish().unwrap().into_inner()
}

#[test]
fn annotation_bodies_stream_under_their_own_limit() {
    let s = Server::start(None, &["--max-annotation-body", "20000"]);
    let dir = common::testdata().join("images/set");
    let files: Vec<PathBuf> = ["a.jpg", "b9.png"].iter().map(|f| dir.join(f)).collect();
    let (task, labels) = labelled_task(&s, "limits", &files, 0);
    let person = labels["results"][1]["id"].clone();
    let shapes = |n: usize| {
        json!({"shapes": (0..n).map(|i| json!({"type": "rectangle", "label_id": person, "frame": 0,
            "points": [1.0, 2.0, 3.0 + i as f64, 4.0]})).collect::<Vec<_>>(), "tags": [], "tracks": []})
    };
    let url = s.url(&format!("/api/tasks/{task}/annotations"));
    let small = shapes(3);
    let r = s.http.put(&url).json(&small).send().unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().unwrap_or_default());
    let stored = s.json(&format!("/api/tasks/{task}/annotations"));

    let big = serde_json::to_vec(&shapes(400)).unwrap();
    assert!(big.len() > 20_000, "{}", big.len());
    let want = "larger than 20000 bytes (--max-annotation-body)";
    // Refused from Content-Length, before the body is read.
    for method in [reqwest::Method::PUT, reqwest::Method::PATCH] {
        let r = s
            .http
            .request(method.clone(), format!("{url}?action=create"))
            .header("Content-Type", "application/json")
            .body(big.clone())
            .send()
            .unwrap();
        assert_eq!(r.status(), 413, "{method}");
        // The rest of the body is not read: the connection is not for reuse.
        assert_eq!(r.headers()["connection"], "close", "{method}");
        assert!(r.text().unwrap().contains(want), "{method}");
    }
    // Without Content-Length (chunked): refused once the streamed bytes pass the limit. The
    // server answers without reading the rest, so the client can lose the race and see the
    // connection close while it is still sending: try again (a few times at most).
    let r = (0..5)
        .find_map(|_| {
            s.http
                .put(&url)
                .header("Content-Type", "application/json")
                .body(reqwest::blocking::Body::new(std::io::Cursor::new(
                    big.clone(),
                )))
                .send()
                .ok()
        })
        .expect("five chunked uploads in a row lost the connection before the answer");
    assert_eq!(r.status(), 413);
    assert!(r.text().unwrap().contains(want));
    // A job's endpoint has the same limit.
    let job = s.json(&format!("/api/jobs?task_id={task}"))["results"][0]["id"].clone();
    let r = s
        .http
        .put(s.url(&format!("/api/jobs/{job}/annotations")))
        .header("Content-Type", "application/json")
        .body(big)
        .send()
        .unwrap();
    assert_eq!(r.status(), 413);
    // Bad bodies are 400s that say why.
    for (ctype, body, needle) in [
        (
            "application/json",
            "{\"shapes\": [",
            "invalid annotations JSON: EOF",
        ),
        ("text/plain", "{}", "Content-Type: application/json"),
    ] {
        let r = s
            .http
            .put(&url)
            .header("Content-Type", ctype)
            .body(body)
            .send()
            .unwrap();
        assert_eq!(r.status(), 400);
        let text = r.text().unwrap();
        assert!(text.contains(needle), "{text}");
    }
    // Nothing was changed by the refused requests; a chunked body under the limit is stored.
    assert_eq!(s.json(&format!("/api/tasks/{task}/annotations")), stored);
    let r = s
        .http
        .put(&url)
        .header("Content-Type", "application/json")
        .body(reqwest::blocking::Body::new(std::io::Cursor::new(
            serde_json::to_vec(&shapes(5)).unwrap(),
        )))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().unwrap_or_default());
    assert_eq!(
        s.json(&format!("/api/tasks/{task}/annotations"))["shapes"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
}

#[test]
fn imports_past_the_limits_fail_naming_them() {
    let s = Server::start(None, &["--max-import-value", "4096"]);
    let dir = common::testdata().join("images/set");
    let files: Vec<PathBuf> = ["a.jpg", "b9.png", "b10.png"]
        .iter()
        .map(|f| dir.join(f))
        .collect();
    let (task, labels) = labelled_task(&s, "limits", &files, 0);
    let r = s
        .http
        .put(s.url(&format!("/api/tasks/{task}/annotations")))
        .json(&rich_annotations(&labels, false))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    let stored = s.json(&format!("/api/tasks/{task}/annotations"));
    let spaces = " ".repeat(10_000);
    let long = "x".repeat(10_000);
    let xml = format!("<annotations>{spaces}<version>1.1</version></annotations>");
    let cases: Vec<(&str, &str, Vec<u8>, String)> = vec![
        (
            "CVAT 1.1",
            "annotations.xml",
            xml.clone().into_bytes(),
            "annotations.xml: a text value is larger than 4096 bytes (--max-import-value)".into(),
        ),
        (
            "CVAT 1.1",
            "annotations.zip",
            zip_with_filler("annotations.xml", xml.as_bytes(), b' ', 0, b""),
            "annotations.xml: a text value is larger than 4096 bytes (--max-import-value)".into(),
        ),
        (
            "Datumaro 1.0",
            "dataset.zip",
            zip_with_filler(
                "annotations/default.json",
                format!("{{\"categories\": {{}}, \"items\": [], \"info\": \"{long}\"}}").as_bytes(),
                b' ',
                0,
                b"",
            ),
            "annotations/default.json: a JSON string is larger than 4096 bytes (--max-import-value)"
                .into(),
        ),
    ];
    for (format, name, bytes, want) in cases {
        let done = import_file(&s, task, format, name, bytes);
        assert_eq!(done["status"], "failed", "{name}: {done}");
        let msg = done["message"].as_str().unwrap();
        assert!(msg.contains(&want), "{name}: {msg}");
        assert!(!msg.contains(s.data.path().to_str().unwrap()), "{msg}");
        assert_eq!(
            s.json(&format!("/api/tasks/{task}/annotations")),
            stored,
            "{name}"
        );
    }
    // 80 MiB of whitespace in ~80 KB: under the default value limit, the archive rule stops it.
    drop(s);
    let s = Server::start(None, &[]);
    let (task, _) = labelled_task(&s, "bomb", &files, 0);
    let bomb = zip_with_filler(
        "annotations.xml",
        b"<annotations>",
        b' ',
        80,
        b"</annotations>",
    );
    let done = import_file(&s, task, "CVAT 1.1", "bomb.zip", bomb);
    assert_eq!(done["status"], "failed", "{done}");
    let msg = done["message"].as_str().unwrap();
    assert!(
        msg.contains(
            "The archive entry \"annotations.xml\" expands to more than 200 times its compressed \
             size"
        ),
        "{msg}"
    );
}

#[test]
fn import_and_export_errors_name_the_file_relative_to_the_data_dir() {
    let s = Server::start(None, &[]);
    let dir = common::testdata().join("images/set");
    let files: Vec<PathBuf> = ["a.jpg"].iter().map(|f| dir.join(f)).collect();
    let (task, _) = labelled_task(&s, "errors", &files, 0);
    let data = s.data.path().to_str().unwrap().to_owned();
    // Where the upload would be stored is a file, not a directory.
    std::fs::create_dir_all(s.data.path().join("uploads")).unwrap();
    std::fs::write(
        s.data.path().join(format!("uploads/annotations_{task}")),
        b"",
    )
    .unwrap();
    // The server answers before reading the body, so the connection is not reused, and the
    // client can lose the race and see it close while still sending: try again (a few times).
    let r = (0..5)
        .find_map(|_| {
            let form = multipart::Form::new().part(
                "annotation_file",
                multipart::Part::bytes(b"<annotations/>".to_vec()).file_name("a.xml"),
            );
            s.http
                .post(s.url(&format!("/api/tasks/{task}/annotations?format=CVAT+1.1")))
                .header("Connection", "close")
                .multipart(form)
                .send()
                .ok()
        })
        .expect("five uploads in a row lost the connection before the answer");
    assert_eq!(r.status(), 500);
    let text = r.text().unwrap();
    assert!(
        text.contains(&format!("cannot create uploads/annotations_{task}: "))
            && !text.contains(&data),
        "{text}"
    );
    // Where exports go is a file.
    std::fs::write(s.data.path().join("exports"), b"").unwrap();
    let r = s
        .http
        .post(s.url(&format!(
            "/api/tasks/{task}/dataset/export?format=CVAT+for+images+1.1"
        )))
        .send()
        .unwrap();
    assert_eq!(r.status(), 202, "{}", r.text().unwrap_or_default());
    let rq = r.json::<Value>().unwrap()["rq_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let done = s.wait(&rq);
    assert_eq!(done["status"], "failed");
    let msg = done["message"].as_str().unwrap();
    assert!(
        msg.starts_with("cannot create exports: ") && !msg.contains(&data),
        "{msg}"
    );
}

/// Issue 11: errors about a bare (not zipped) uploaded file name it as the client sent it, not
/// as the server stored it (`<uuid>_unknown_label.xml`), through multipart and TUS alike.
#[test]
fn bare_import_errors_name_the_file_as_the_client_sent_it() {
    let s = Server::start(None, &[]);
    let dir = common::testdata().join("images/set");
    let files: Vec<PathBuf> = ["a.jpg"].iter().map(|f| dir.join(f)).collect();
    let (task, _) = labelled_task(&s, "bare names", &files, 0);
    let xml = b"<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<annotations>\n  <version>1.1</version>\n  \
        <image id=\"0\" name=\"a.jpg\" width=\"1\" height=\"1\">\n    \
        <box label=\"no-such-label\" occluded=\"0\" xtl=\"0\" ytl=\"0\" xbr=\"1\" ybr=\"1\" z_order=\"0\"></box>\n  \
        </image>\n</annotations>\n"
        .to_vec();
    let want = "import failed: unknown_label.xml, line 5: unknown label 'no-such-label'";
    let done = import_file(&s, task, "CVAT 1.1", "unknown_label.xml", xml.clone());
    assert_eq!(done["status"], "failed", "{done}");
    let msg = done["message"].as_str().unwrap();
    assert!(msg.starts_with(want), "multipart: {msg}");

    let endpoint = s.url(&format!("/api/tasks/{task}/annotations/"));
    let url = format!("{endpoint}?format=CVAT+1.1&filename=unknown_label.xml");
    assert_eq!(s.post_with(&url, "Upload-Start").status(), 202);
    let r = s.tus_create(&endpoint, "unknown_label.xml", xml.len());
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    s.tus_patch(&location, 0, &xml);
    let done = s.wait_accepted(s.post_with(&url, "Upload-Finish"));
    assert_eq!(done["status"], "failed", "{done}");
    let msg = done["message"].as_str().unwrap();
    assert!(msg.starts_with(want), "TUS: {msg}");

    // A file uploaded to a job's endpoint is that job's: the task's Upload-Finish of the same
    // name does not take it, the job's does.
    let job = s.json(&format!("/api/jobs?task_id={task}"))["results"][0]["id"].clone();
    let job_endpoint = s.url(&format!("/api/jobs/{job}/annotations/"));
    let job_url = format!("{job_endpoint}?format=CVAT+1.1&filename=unknown_label.xml");
    assert_eq!(s.post_with(&job_url, "Upload-Start").status(), 202);
    let r = s.tus_create(&job_endpoint, "unknown_label.xml", xml.len());
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    s.tus_patch(&location, 0, &xml);
    let r = s.post_with(&url, "Upload-Finish");
    assert_eq!(r.status(), 400);
    assert!(r
        .text()
        .unwrap()
        .contains("no uploaded file 'unknown_label.xml'"));
    let done = s.wait_accepted(s.post_with(&job_url, "Upload-Finish"));
    assert!(
        done["message"].as_str().unwrap().starts_with(want),
        "job TUS: {done}"
    );
}

#[test]
fn images_over_the_pixel_limit_are_refused_at_creation_and_nothing_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let big = tmp.path().join("big.png");
    image::RgbImage::new(2000, 1000).save(&big).unwrap();
    let small = tmp.path().join("small.png");
    image::RgbImage::new(100, 100).save(&small).unwrap();
    let s = Server::start(None, &["--max-image-pixels", "1000000"]);
    let task = s.create_task("big", 0);
    let rq = s.upload(task, &[small.clone(), big], json!({"image_quality": 70}));
    let out = s.wait(&rq);
    assert_eq!(out["status"], "failed");
    assert_eq!(
        out["message"],
        "big.png: 2000x1000 pixels is more than the limit of 1000000 (--max-image-pixels)"
    );
    assert_eq!(s.media_dirs(), 0, "nothing kept");
    let uploads = walk(&s.data.path().join("uploads"));
    assert!(uploads.is_empty(), "no upload kept: {uploads:?}");
    assert_eq!(
        s.get(&format!("/api/tasks/{task}/data/meta")).status(),
        400,
        "no data attached"
    );
    // Within the limit: created.
    let task = s.create_task("small", 0);
    let rq = s.upload(task, &[small], json!({"image_quality": 70}));
    assert_eq!(s.wait(&rq)["status"], "finished");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                out.extend(walk(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

#[test]
fn a_memory_limit_below_the_cache_is_refused_at_start() {
    let data = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_frameserver"))
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(data.path())
        .args(["--cache-size", "100000000", "--memory-limit", "200000000"])
        .env("FRAMESERVER_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--memory-limit 200000000 is too small") && err.lines().count() <= 2,
        "{err}"
    );
}

#[test]
fn budget_gauges_are_exported() {
    let s = Server::start(None, &["--cache-size", "8388608"]);
    assert_eq!(
        s.metric("frameserver_memory_budget_bytes"),
        (8388608u64 + (512 << 20) - (96 << 20)) as f64
    );
    assert_eq!(s.metric("frameserver_memory_reserved_bytes"), 0.0);
    assert_eq!(s.metric("frameserver_decoders_open"), 0.0);
    assert_eq!(s.metric("frameserver_memory_waiting"), 0.0);
}

/// Sends `body` with `method` and returns the status and the JSON answer (Null when empty).
fn send_json(s: &Server, c: &Client, method: &str, path: &str, body: Value) -> (u16, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let r = c.request(m, s.url(path)).json(&body).send().unwrap();
    let status = r.status().as_u16();
    let text = r.text().unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

#[test]
fn jobs_workflow_filters_issues_and_comments_follow_cvat() {
    let s = Server::start(None, &[]);
    let task = s.create_task("workflow", 3);
    s.attach_five_images(task);
    let jobs = s.json(&format!("/api/jobs?task_id={task}&sort=id"));
    assert_eq!(jobs["count"], 2);
    let (j1, j2) = (
        jobs["results"][0]["id"].as_i64().unwrap(),
        jobs["results"][1]["id"].as_i64().unwrap(),
    );
    let job = &jobs["results"][0];
    for (k, v) in [
        ("stage", "annotation"),
        ("state", "new"),
        ("status", "annotation"),
        ("type", "annotation"),
        ("task_name", "workflow"),
    ] {
        assert_eq!(job[k], v, "{k}");
    }
    assert!(job["created_date"].as_str().unwrap().ends_with('Z'));
    assert_eq!(job["assignee"], Value::Null);
    // The UI asks for the ground-truth job: there is none.
    let gt = s.json(&format!("/api/jobs?task_id={task}&type=ground_truth"));
    assert_eq!(gt["count"], 0, "{gt}");
    // Default order is newest first, as in CVAT.
    assert_eq!(
        s.json(&format!("/api/jobs?task_id={task}"))["results"][0]["id"],
        j2
    );

    // State and stage changes, and the status CVAT derives.
    let (st, j) = send_json(
        &s,
        &s.http,
        "PATCH",
        &format!("/api/jobs/{j1}"),
        json!({"state": "in progress"}),
    );
    assert_eq!((st, j["state"].as_str()), (200, Some("in progress")), "{j}");
    assert!(j["updated_date"].as_str() >= job["updated_date"].as_str());
    let (_, j) = send_json(
        &s,
        &s.http,
        "PATCH",
        &format!("/api/jobs/{j1}"),
        json!({"stage": "validation"}),
    );
    assert_eq!(
        (
            j["stage"].as_str(),
            j["state"].as_str(),
            j["status"].as_str()
        ),
        (Some("validation"), Some("new"), Some("validation"))
    );
    let (_, j) = send_json(
        &s,
        &s.http,
        "PATCH",
        &format!("/api/jobs/{j1}"),
        json!({"stage": "acceptance", "state": "completed"}),
    );
    assert_eq!(j["status"], "completed");
    assert_eq!(
        s.json(&format!("/api/tasks/{task}"))["jobs"]["completed"],
        1
    );
    let (st, e) = send_json(
        &s,
        &s.http,
        "PATCH",
        &format!("/api/jobs/{j1}"),
        json!({"state": "done"}),
    );
    assert_eq!(st, 400);
    assert!(e.to_string().contains("not a valid choice"), "{e}");
    // Read back from the store.
    assert_eq!(s.json(&format!("/api/jobs/{j1}"))["stage"], "acceptance");
    // Filters: simple, JSON Logic, search.
    let by_state = s.json(&format!("/api/jobs?task_id={task}&state=completed"));
    assert_eq!(by_state["count"], 1);
    let filter = r#"{"and":[{"==":[{"var":"stage"},"annotation"]}]}"#;
    let by_filter = s.json(&format!(
        "/api/jobs?filter={}",
        filter
            .replace('"', "%22")
            .replace('{', "%7B")
            .replace('}', "%7D")
    ));
    assert_eq!(by_filter["results"][0]["id"], j2, "{by_filter}");
    assert_eq!(by_filter["count"], 1);
    assert_eq!(s.get("/api/jobs?filter=%7Bnope").status(), 400);
    assert_eq!(s.get("/api/jobs?sort=secret").status(), 400);

    // A job assignee sees the job (and its task) but cannot move its stage.
    let out = cli_user(&s, &["create", "ann"], "ann-password");
    assert!(out.status.success());
    let (ann, _) = token_client(&s.base, "ann", "ann-password");
    assert_eq!(
        ann.get(s.url(&format!("/api/jobs/{j2}")))
            .send()
            .unwrap()
            .status(),
        404
    );
    let ann_id = s.json("/api/users?username=ann")["results"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "ann")
        .unwrap()["id"]
        .clone();
    let (_, j) = send_json(
        &s,
        &s.http,
        "PATCH",
        &format!("/api/jobs/{j2}"),
        json!({"assignee": ann_id}),
    );
    assert_eq!(j["assignee"]["username"], "ann");
    assert!(j["assignee_updated_date"].is_string());
    assert_eq!(
        ann.get(s.url(&format!("/api/jobs/{j2}")))
            .send()
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        ann.get(s.url(&format!("/api/jobs/{j1}")))
            .send()
            .unwrap()
            .status(),
        404
    );
    let ann_jobs: Value = ann.get(s.url("/api/jobs")).send().unwrap().json().unwrap();
    assert_eq!(ann_jobs["count"], 1);
    let (st, _) = send_json(
        &s,
        &ann,
        "PATCH",
        &format!("/api/jobs/{j2}"),
        json!({"state": "completed"}),
    );
    assert_eq!(st, 200);
    let (st, _) = send_json(
        &s,
        &ann,
        "PATCH",
        &format!("/api/jobs/{j2}"),
        json!({"stage": "acceptance"}),
    );
    assert_eq!(st, 403);
    let ann_labels: Value = ann
        .get(s.url(&format!("/api/labels?job_id={j2}")))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(ann_labels["count"], 1);
    // Unassigning with null.
    let (_, j) = send_json(
        &s,
        &s.http,
        "PATCH",
        &format!("/api/jobs/{j2}"),
        json!({"assignee": null}),
    );
    assert_eq!(j["assignee"], Value::Null);

    // Issues and comments: the review workflow.
    let (st, issue) = send_json(
        &s,
        &s.http,
        "POST",
        "/api/issues",
        json!({
            "job": j2, "frame": 3, "position": [1.0, 2.0, 30.0, 40.0], "message": "box too loose"
        }),
    );
    assert_eq!(st, 201, "{issue}");
    assert_eq!(issue["resolved"], false);
    assert_eq!(issue["comments"]["count"], 1);
    assert_eq!(issue["owner"]["username"], "admin");
    let id = issue["id"].as_i64().unwrap();
    for (body, needle) in [
        (
            json!({"job": j2, "frame": 0, "position": [1.0], "message": "x"}),
            "not in job",
        ),
        (
            json!({"job": j2, "frame": 3, "position": [], "message": "x"}),
            "position",
        ),
        (
            json!({"job": j2, "frame": 3, "position": [1.0, 2.0]}),
            "message",
        ),
        (
            json!({"job": 999, "frame": 3, "position": [1.0, 2.0], "message": "x"}),
            "no job",
        ),
    ] {
        let (st, e) = send_json(&s, &s.http, "POST", "/api/issues", body);
        assert_eq!(st, 400, "{e}");
        assert!(e.to_string().contains(needle), "{needle}: {e}");
    }
    assert_eq!(s.json(&format!("/api/jobs/{j2}"))["issues"]["count"], 1);
    let (st, c) = send_json(
        &s,
        &s.http,
        "POST",
        "/api/comments",
        json!({"issue": id, "message": "tightened"}),
    );
    assert_eq!(st, 201, "{c}");
    assert_eq!(c["issue"], id);
    let comments = s.json(&format!("/api/comments?job_id={j2}&page_size=500"));
    let texts: Vec<&str> = comments["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["message"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["tightened", "box too loose"]);
    assert_eq!(s.json(&format!("/api/comments?issue_id={id}"))["count"], 2);
    let (_, resolved) = send_json(
        &s,
        &s.http,
        "PATCH",
        &format!("/api/issues/{id}"),
        json!({"resolved": true}),
    );
    assert_eq!(resolved["resolved"], true);
    assert_eq!(
        s.json(&format!("/api/issues?job_id={j2}&resolved=true"))["count"],
        1
    );
    assert_eq!(
        s.json(&format!("/api/issues?job_id={j2}&resolved=false"))["count"],
        0
    );
    assert_eq!(s.json(&format!("/api/issues?task_id={task}"))["count"], 1);
    assert_eq!(s.json(&format!("/api/issues?job_id={j1}"))["count"], 0);
    let (st, _) = send_json(
        &s,
        &s.http,
        "PATCH",
        &format!("/api/issues/{id}"),
        json!({"frame": 4}),
    );
    assert_eq!(st, 400);
    // Someone who does not see the job does not see its issues.
    let issues: Value = ann
        .get(s.url("/api/issues"))
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(issues["count"], 0);
    assert_eq!(
        ann.get(s.url(&format!("/api/issues/{id}")))
            .send()
            .unwrap()
            .status(),
        404
    );
    let cid = c["id"].as_i64().unwrap();
    let (_, c2) = send_json(
        &s,
        &s.http,
        "PATCH",
        &format!("/api/comments/{cid}"),
        json!({"message": "tightened twice"}),
    );
    assert_eq!(c2["message"], "tightened twice");
    assert_eq!(
        s.http
            .delete(s.url(&format!("/api/comments/{cid}")))
            .send()
            .unwrap()
            .status(),
        204
    );
    assert_eq!(s.json(&format!("/api/comments?issue_id={id}"))["count"], 1);
    assert_eq!(
        s.http
            .delete(s.url(&format!("/api/issues/{id}")))
            .send()
            .unwrap()
            .status(),
        204
    );
    assert_eq!(s.json(&format!("/api/comments?job_id={j2}"))["count"], 0);

    // Annotation bodies always carry `intervals`; non-empty ones are refused, not dropped.
    let ann_body = s.json(&format!("/api/jobs/{j1}/annotations"));
    assert_eq!(ann_body["intervals"], json!([]));
    let (st, a) = send_json(
        &s,
        &s.http,
        "PUT",
        &format!("/api/jobs/{j1}/annotations"),
        json!({
            "version": 0, "tags": [], "shapes": [], "tracks": [], "intervals": []
        }),
    );
    assert_eq!((st, &a["intervals"]), (200, &json!([])));
    let (st, e) = send_json(
        &s,
        &s.http,
        "PUT",
        &format!("/api/jobs/{j1}/annotations"),
        json!({
            "intervals": [{"label_id": 1, "start": 0, "stop": 2}]
        }),
    );
    assert_eq!(st, 400);
    assert!(e.to_string().contains("intervals"), "{e}");

    // The resources frameserver does not have answer as CVAT does when there are none.
    for path in [
        "/api/organizations?page_size=10&sort=slug",
        "/api/invitations?filter=%7B%7D",
    ] {
        let v = s.json(path);
        assert_eq!(
            (v["count"].as_i64(), v["results"].as_array().map(Vec::len)),
            (Some(0), Some(0)),
            "{path}"
        );
    }
    for path in [
        "/api/user-agreements",
        "/api/lambda/functions",
        "/api/lambda/requests",
    ] {
        assert_eq!(s.json(path), json!([]), "{path}");
    }
    assert_eq!(
        s.http
            .head(s.url("/api/lambda/functions"))
            .send()
            .unwrap()
            .status(),
        200
    );
    let (st, ev) = send_json(
        &s,
        &s.http,
        "POST",
        "/api/events",
        json!({
            "events": [{"scope": "load:job", "timestamp": "2026-12-07T10:00:00Z"}, {"scope": "save:job"}],
            "timestamp": "2026-12-07T10:00:01Z"
        }),
    );
    assert_eq!(st, 201);
    assert_eq!(ev["events"].as_array().unwrap().len(), 2);
    assert_eq!(s.metric("frameserver_client_events_total"), 2.0);
    let (st, _) = send_json(&s, &s.http, "POST", "/api/events", json!({"no": "events"}));
    assert_eq!(st, 400);
    let big = vec![b' '; (1 << 20) + 10];
    let r = s
        .http
        .post(s.url("/api/events"))
        .header("Content-Type", "application/json")
        .body(big)
        .send()
        .unwrap();
    assert_eq!(r.status(), 413);
    // Deleting the task deletes its jobs' issues (no orphan rows answer later).
    let (_, issue) = send_json(
        &s,
        &s.http,
        "POST",
        "/api/issues",
        json!({
            "job": j1, "frame": 0, "position": [1.0, 2.0], "message": "again"
        }),
    );
    assert_eq!(
        s.http
            .delete(s.url(&format!("/api/tasks/{task}")))
            .send()
            .unwrap()
            .status(),
        204
    );
    assert_eq!(s.get(&format!("/api/issues/{}", issue["id"])).status(), 404);
}

#[test]
fn health_and_ui_are_served_without_login() {
    let ui = tempfile::tempdir().unwrap();
    std::fs::write(
        ui.path().join("index.html"),
        "<!doctype html><title>ui</title>",
    )
    .unwrap();
    std::fs::create_dir(ui.path().join("assets")).unwrap();
    std::fs::write(ui.path().join("assets/app.mjs"), "export {};").unwrap();
    std::fs::write(ui.path().join("assets/w.wasm"), b"\0asm").unwrap();
    let s = Server::start(None, &["--ui-dir", ui.path().to_str().unwrap()]);
    let anon = Client::new();
    let r = anon
        .get(s.url("/api/server/health/?format=json"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().unwrap()["DatabaseBackend"], "working");
    // Pages: the index for any client-side route, isolated as the UI's workers need.
    for path in ["/", "/tasks/1/jobs/2", "/auth/login?next=/tasks"] {
        let r = anon.get(s.url(path)).send().unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["cross-origin-opener-policy"], "same-origin");
        assert_eq!(
            r.headers()["cross-origin-embedder-policy"],
            "credentialless"
        );
        assert!(r.text().unwrap().contains("<title>ui</title>"), "{path}");
    }
    let r = anon.get(s.url("/assets/app.mjs")).send().unwrap();
    assert_eq!(r.headers()["content-type"], "application/javascript");
    assert_eq!(r.headers()["cross-origin-embedder-policy"], "require-corp");
    assert!(r.headers()["cache-control"]
        .to_str()
        .unwrap()
        .contains("immutable"));
    let r = anon.get(s.url("/assets/w.wasm")).send().unwrap();
    assert_eq!(r.headers()["content-type"], "application/wasm");
    // A missing asset is a 404, not the page; the API stays behind login and answers JSON.
    assert_eq!(
        anon.get(s.url("/assets/gone.js")).send().unwrap().status(),
        404
    );
    assert_eq!(anon.get(s.url("/api/tasks")).send().unwrap().status(), 401);
    assert_eq!(s.get("/api/no-such-thing").status(), 404);
    assert_eq!(anon.post(s.url("/tasks")).send().unwrap().status(), 405);
    assert_eq!(
        anon.get(s.url("/../../etc/passwd"))
            .send()
            .unwrap()
            .status(),
        200
    );
    assert!(!anon
        .get(s.url("/../../etc/passwd"))
        .send()
        .unwrap()
        .text()
        .unwrap()
        .contains("root:"));
    // Without --ui-dir there is no UI; a wrong --ui-dir is refused at start.
    let plain = Server::start(None, &[]);
    assert_eq!(anon.get(plain.url("/")).send().unwrap().status(), 404);
    let (code, err) = serve_exit(
        tempfile::tempdir().unwrap().path(),
        &["--ui-dir", "/nonexistent"],
        false,
    );
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("--ui-dir") && err.contains("index.html"),
        "{err}"
    );
}

/// The ids of a user list answer, in order.
fn user_names(v: &Value) -> Vec<String> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn users_list_searches_filters_and_sorts_as_cvat() {
    let s = Server::start(None, &[]);
    for name in ["ann", "bob", "joanna"] {
        assert!(cli_user(&s, &["create", name], "user-password")
            .status
            .success());
    }
    // Newest first by default, as CVAT's `-id`.
    let all = s.json("/api/users");
    assert_eq!(all["count"], 4);
    assert_eq!(user_names(&all), ["joanna", "bob", "ann", "admin"]);
    // What the UI's assignee box sends while one types.
    let typed = s.json("/api/users?search=AN&limit=10&is_active=true");
    assert_eq!(user_names(&typed), ["joanna", "ann"]);
    assert_eq!(user_names(&s.json("/api/users?username=bob")), ["bob"]);
    let bob_id = s.json("/api/users?username=bob")["results"][0]["id"]
        .as_i64()
        .unwrap();
    let by_id = s.json(&format!("/api/users?id={bob_id}"));
    assert_eq!(
        (by_id["count"].as_i64(), user_names(&by_id)),
        (Some(1), vec!["bob".to_owned()])
    );
    assert_eq!(s.json("/api/users?is_active=False")["count"], 0);
    assert_eq!(s.json("/api/users?first_name=nobody")["count"], 0);
    assert_eq!(
        user_names(&s.json("/api/users?sort=username")),
        ["admin", "ann", "bob", "joanna"]
    );
    assert_eq!(
        user_names(&s.json("/api/users?sort=-username&page_size=2")),
        ["joanna", "bob"]
    );
    let filter = r#"{"or":[{"==":[{"var":"username"},"bob"]},{"==":[{"var":"id"},1]}]}"#;
    let by_filter = s.json(&format!(
        "/api/users?sort=id&filter={}",
        filter
            .replace('"', "%22")
            .replace('{', "%7B")
            .replace('}', "%7D")
    ));
    assert_eq!(user_names(&by_filter), ["admin", "bob"]);
    // Someone who is not an admin lists only themselves (CVAT's rule outside organizations).
    let (ann, _) = token_client(&s.base, "ann", "user-password");
    let seen: Value = ann.get(s.url("/api/users")).send().unwrap().json().unwrap();
    assert_eq!(user_names(&seen), ["ann"]);
    // `page_size=all` (cvat-core's default for users) is every user on one page.
    let everyone = s.json("/api/users?page_size=all");
    assert_eq!(everyone["results"].as_array().unwrap().len(), 4);
    assert_eq!(everyone["next"], Value::Null);
    // Bad input is a 400 that says what is wrong.
    for (q, says) in [
        ("sort=password_hash", "cannot sort by 'password_hash'"),
        ("is_active=maybe", "'is_active' must be true or false"),
        (
            "filter=%7B%22==%22:[%7B%22var%22:%22email%22%7D,1]%7D",
            "unknown field 'email'",
        ),
    ] {
        let r = s.get(&format!("/api/users?{q}"));
        assert_eq!(r.status(), 400, "{q}");
        let body = r.text().unwrap();
        assert!(body.contains(says), "{q}: {body}");
    }
}

/// A request's `operation` as CVAT answers it (no project, function or lightweight flag).
fn operation(kind: &str, target: &str, task: i64, job: Option<i64>, format: Option<&str>) -> Value {
    json!({"type": kind, "target": target, "project_id": null, "task_id": task, "job_id": job,
           "format": format, "function_id": null, "lightweight": null})
}

/// Exports `what` (`tasks/1`, `jobs/2`) and waits: checks the 202, that the request id is
/// `rq_id`, and that it finished; returns the finished request.
fn exported(s: &Server, what: &str, format: &str, images: bool, rq_id: &str) -> Value {
    let (st, r) = post_export(s, what, format, images);
    assert_eq!((st, r["rq_id"].as_str()), (202, Some(rq_id)), "{r}");
    let done = s.wait(rq_id);
    assert_eq!(done["status"], "finished", "{done}");
    done
}

/// Starts an export of `what` (`tasks/1`, `jobs/2`); returns the status and the answer.
fn post_export(s: &Server, what: &str, format: &str, images: bool) -> (u16, Value) {
    let r = s
        .http
        .post(s.url(&format!(
            "/api/{what}/dataset/export?format={}&save_images={}",
            format.replace(' ', "+"),
            if images { "True" } else { "False" }
        )))
        .send()
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().unwrap_or(Value::Null))
}

#[test]
fn export_requests_name_their_job_format_and_kind_as_cvat() {
    let s = Server::start(None, &[]);
    let task = s.create_task("exports", 3);
    s.attach_five_images(task);
    let jobs = s.json(&format!("/api/jobs?task_id={task}&sort=id"));
    let (j1, j2) = (
        jobs["results"][0]["id"].as_i64().unwrap(),
        jobs["results"][1]["id"].as_i64().unwrap(),
    );
    let admin = s.json("/api/users/self")["id"].as_i64().unwrap();

    // A job's annotations (no images): target job, its job and task, the format, export:annotations.
    let rq = format!("export:job-{j1}-annotations-in-CVAT_for_images_1@1-format-by-{admin}");
    let done = exported(&s, &format!("jobs/{j1}"), "CVAT for images 1.1", false, &rq);
    assert_eq!(
        done["operation"],
        operation(
            "export:annotations",
            "job",
            task,
            Some(j1),
            Some("CVAT for images 1.1")
        )
    );
    let (code, headers, zip) = s.bytes(
        done["result_url"]
            .as_str()
            .unwrap()
            .strip_prefix(&s.base)
            .unwrap(),
    );
    assert_eq!(code, 200);
    let cd = headers["content-disposition"].to_str().unwrap();
    assert!(cd.contains(&format!("job-{j1}_annotations_")), "{cd}");
    let names: Vec<String> = zip_entries_any(&zip).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["annotations.xml"]);

    // The task's dataset (images): target task, no job, export:dataset.
    let task_rq = format!("export:task-{task}-dataset-in-Datumaro_1@0-format-by-{admin}");
    let done = exported(&s, &format!("tasks/{task}"), "Datumaro 1.0", true, &task_rq);
    assert_eq!(
        done["operation"],
        operation("export:dataset", "task", task, None, Some("Datumaro 1.0"))
    );

    // The list filters on those fields; a job's images export is export:dataset with its job.
    let j2_rq = format!("export:job-{j2}-dataset-in-CVAT_for_images_1@1-format-by-{admin}");
    let done = exported(
        &s,
        &format!("jobs/{j2}"),
        "CVAT for images 1.1",
        true,
        &j2_rq,
    );
    assert_eq!(done["operation"]["type"], "export:dataset");
    let ids = |q: &str| -> Vec<String> {
        s.json(&format!("/api/requests?{q}"))["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&format!("job_id={j1}")), [rq.as_str()]);
    assert_eq!(ids(&format!("job_id={j2}")), [j2_rq.as_str()]);
    assert_eq!(ids("target=task&type=export:dataset"), [task_rq.as_str()]);
    assert_eq!(
        ids("format=CVAT+for+images+1.1&sort=id"),
        [rq.clone(), j2_rq]
    );

    // The same export again has the same id; its previous result is replaced.
    let old_url = s.wait(&rq)["result_url"].as_str().unwrap().to_owned();
    let again = exported(&s, &format!("jobs/{j1}"), "CVAT for images 1.1", false, &rq);
    assert_ne!(again["result_url"].as_str(), Some(old_url.as_str()));
    assert_eq!(s.http.get(&old_url).send().unwrap().status(), 404);
    assert_eq!(
        s.http
            .get(again["result_url"].as_str().unwrap())
            .send()
            .unwrap()
            .status(),
        200
    );
}

#[test]
fn an_export_still_running_is_not_started_twice() {
    let s = Server::start(None, &[]);
    let video = common::shared().join("videos/cup.mp4");
    let (task, _) = labelled_task(&s, "busy", &[video], 0);
    // Every frame as PNG takes seconds: the second identical request finds it running.
    let (st, first) = post_export(&s, &format!("tasks/{task}"), "CVAT for video 1.1", true);
    assert_eq!(st, 202, "{first}");
    let (st, second) = post_export(&s, &format!("tasks/{task}"), "CVAT for video 1.1", true);
    assert_eq!(st, 409, "{second}");
    assert!(second.to_string().contains("still running"), "{second}");
    // Another format is another request.
    let (st, other) = post_export(&s, &format!("tasks/{task}"), "Datumaro 1.0", false);
    assert_eq!(st, 202, "{other}");
    assert_eq!(
        s.wait(other["rq_id"].as_str().unwrap())["status"],
        "finished"
    );
    assert_eq!(
        s.wait(first["rq_id"].as_str().unwrap())["status"],
        "finished"
    );
}

#[test]
fn job_annotation_uploads_use_the_jobs_tus_endpoint_and_request_id() {
    let s = Server::start(None, &[]);
    let task = s.create_task("job import", 3);
    s.attach_five_images(task);
    let car = s.json(&format!("/api/labels?task_id={task}"))["results"][0]["id"]
        .as_i64()
        .unwrap();
    let jobs = s.json(&format!("/api/jobs?task_id={task}&sort=id"));
    let (j1, j2) = (
        jobs["results"][0]["id"].as_i64().unwrap(),
        jobs["results"][1]["id"].as_i64().unwrap(),
    );
    // Job 2 holds frames 3 and 4: one rectangle on frame 4, exported in CVAT's XML.
    let shape =
        json!({"type": "rectangle", "label_id": car, "frame": 4, "points": [2.0, 3.0, 12.5, 30.0]});
    let (st, _) = send_json(
        &s,
        &s.http,
        "PUT",
        &format!("/api/jobs/{j2}/annotations"),
        json!({"shapes": [shape]}),
    );
    assert_eq!(st, 200);
    let rq = format!("export:job-{j2}-annotations-in-CVAT_for_images_1@1-format-by-1");
    let done = exported(&s, &format!("jobs/{j2}"), "CVAT for images 1.1", false, &rq);
    let file = s
        .http
        .get(done["result_url"].as_str().unwrap())
        .send()
        .unwrap()
        .bytes()
        .unwrap()
        .to_vec();
    let (st, _) = send_json(
        &s,
        &s.http,
        "DELETE",
        &format!("/api/jobs/{j2}/annotations"),
        Value::Null,
    );
    assert_eq!(st, 204);
    assert_eq!(
        s.json(&format!("/api/jobs/{j2}/annotations"))["shapes"],
        json!([])
    );

    // The UI's upload: Upload-Start, TUS creation on the job, pieces, Upload-Finish.
    let endpoint = s.url(&format!("/api/jobs/{j2}/annotations/"));
    let query = "?format=CVAT+1.1&filename=job.zip&conv_mask_to_poly=true";
    // Upload-Start, Upload-Finish: the import's POSTs with the file's name and the format.
    let step = |header: &str| s.post_with(&format!("{endpoint}{query}"), header);
    assert_eq!(step("Upload-Start").status(), 202);
    let r = s.tus_create(&endpoint, "job.zip", file.len());
    let location = r.headers()["location"].to_str().unwrap().to_owned();
    let file_id = location
        .strip_prefix(&s.url(&format!("/api/jobs/{j2}/annotations/")))
        .unwrap_or_else(|| panic!("Location under the job: {location}"))
        .to_owned();
    assert_eq!(file_id.len(), 36, "{location}");
    // The upload is the job's: not found at the task's endpoint nor at another job's.
    for other in [
        format!("/api/tasks/{task}/annotations/{file_id}"),
        format!("/api/jobs/{j1}/annotations/{file_id}"),
    ] {
        let r = s.http.head(s.url(&other)).send().unwrap();
        assert_eq!(r.status(), 404, "{other}");
    }
    let half = file.len() / 2;
    for (offset, piece) in [(0, &file[..half]), (half, &file[half..])] {
        let r = s.tus_patch(&location, offset, piece);
        assert_eq!(
            r.headers()["upload-offset"].to_str().unwrap(),
            (offset + piece.len()).to_string()
        );
    }
    let r = step("Upload-Finish");
    assert_eq!(r.status(), 202);
    let rq = format!("import:job-{j2}-annotations");
    assert_eq!(r.json::<Value>().unwrap()["rq_id"], rq.as_str());
    let done = s.wait(&rq);
    assert_eq!(done["status"], "finished", "{done}");
    assert_eq!(
        done["operation"],
        operation("import:annotations", "job", task, Some(j2), None)
    );
    let got = s.json(&format!("/api/jobs/{j2}/annotations"));
    assert_eq!(got["shapes"].as_array().unwrap().len(), 1, "{got}");
    assert_eq!(got["shapes"][0]["frame"], 4);
    assert_eq!(got["shapes"][0]["points"], json!([2.0, 3.0, 12.5, 30.0]));
    assert_eq!(
        s.json(&format!("/api/jobs/{j1}/annotations"))["shapes"],
        json!([])
    );
    // The finished upload is gone; finishing again names the missing file.
    assert_eq!(s.http.head(&location).send().unwrap().status(), 404);
    let r = step("Upload-Finish");
    assert_eq!(r.status(), 400);
    assert!(r.text().unwrap().contains("no uploaded file 'job.zip'"));
}
