//! The chunk floor: the least work a compressed zip chunk of a video needs, done in-process with
//! the crate's public media and codec API and nothing else (no HTTP, no cache, no decoder pool):
//! open the video, seek to the manifest key frame at or before the chunk's first frame, decode
//! forward (skipping frames before the key frame's pts and frames before the chunk; frames
//! before the chunk that no other frame uses are not decoded at all: `frames::decode_frames`,
//! the server's own frame reading without its reader pool), JPEG-encode
//! each wanted frame with libjpeg-turbo on other threads while decoding goes on, by the same
//! pixel path as the server (`codec::FrameJpegEncoder`: straight from the YUV 4:2:0 planes, else
//! through CVAT's RGB conversion), and store them in the zip. The output is the same bytes the
//! server sends for the chunk.
//!
//! Shared by `examples/chunk_floor` (used by `benches/compare-chunks.sh`) and the criterion
//! bench `benches/chunks.rs`.

#![allow(dead_code)]

use std::path::Path;
use std::sync::atomic::Ordering;

use anyhow::{bail, Result};
use frameserver::codec::{encode_jpegs_overlapped, entry_name, FrameJpegEncoder, ZipChunk};
use frameserver::frames::{self, DecoderPool, SeekTable};
use frameserver::manifest::{self, Manifest, VideoOptions};
use frameserver::media::{DecodedFrame, FrameReader};

/// What a chunk build needs to know about the video: its frame count and seek points.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Frames in the video (the manifest's `length`).
    pub frames: u64,
    /// `(number, pts)` of each manifest key frame, ascending.
    pub keyframes: Vec<(u64, i64)>,
    pub chunk_size: u64,
    /// The manifest, to hand to the Python baseline.
    pub manifest: Manifest,
}

impl Plan {
    /// Indexes `path` as the server does at task creation (`force`, the task's chunk size).
    pub fn new(path: &Path, chunk_size: u64) -> Result<Plan> {
        let opts = VideoOptions {
            chunk_size: chunk_size as usize,
            force: true,
            ..Default::default()
        };
        let index = manifest::index_video(path, &opts, &|_| {})?;
        let Manifest::Video {
            properties,
            keyframes,
        } = &index.manifest
        else {
            bail!("{}: not a video manifest", path.display());
        };
        Ok(Plan {
            frames: properties.length,
            keyframes: keyframes.iter().map(|k| (k.number, k.pts)).collect(),
            chunk_size,
            manifest: index.manifest.clone(),
        })
    }

    /// Number of chunks.
    pub fn chunks(&self) -> u64 {
        self.frames.div_ceil(self.chunk_size)
    }

    /// First and last frame of chunk `n`.
    pub fn chunk_frames(&self, n: u64) -> (u64, u64) {
        let first = n * self.chunk_size;
        (first, (first + self.chunk_size).min(self.frames) - 1)
    }

    /// The last key frame at or before `frame`.
    pub fn key_before(&self, frame: u64) -> Option<(u64, i64)> {
        let i = self.keyframes.partition_point(|&(n, _)| n <= frame);
        (i > 0).then(|| self.keyframes[i - 1])
    }

    /// Frames a cold build of chunk `n` decodes (from its key frame to its last frame).
    pub fn decode_cost(&self, n: u64) -> u64 {
        let (first, last) = self.chunk_frames(n);
        let from = self.key_before(first).map_or(0, |k| k.0);
        last - from + 1
    }

    /// The chunk whose cold build decodes the most frames (the first one on ties).
    pub fn worst_chunk(&self) -> u64 {
        (0..self.chunks())
            .max_by_key(|&n| (self.decode_cost(n), std::cmp::Reverse(n)))
            .unwrap_or(0)
    }
}

/// A built chunk and the number of frames decoded for it (and skipped: non-reference frames
/// before the chunk, not decoded).
pub struct Built {
    pub zip: Vec<u8>,
    pub decoded: u64,
    pub skipped: u64,
}

/// Decodes chunk `n`'s frames as the server does (`frames::decode_frames`: a fresh reader, a
/// seek to the key frame, non-reference frames before the chunk skipped, no reader kept),
/// handing each to `submit` in order. Returns the frames decoded and skipped.
fn decode_chunk(
    path: &Path,
    plan: &Plan,
    n: u64,
    submit: &mut dyn FnMut(DecodedFrame) -> Result<()>,
) -> Result<(u64, u64)> {
    let (first, last) = plan.chunk_frames(n);
    let seek = SeekTable::from_keyframes(plan.keyframes.clone(), Some(plan.frames));
    let wanted: Vec<u64> = (first..=last).collect();
    let (decoded, skipped) = (
        frames::FRAMES_DECODED.load(Ordering::Relaxed),
        frames::FRAMES_SKIPPED.load(Ordering::Relaxed),
    );
    frames::decode_frames::<anyhow::Error>(
        path,
        &seek,
        &DecoderPool::new(0),
        (0, 0),
        &wanted,
        |_, f| submit(f),
    )?;
    Ok((
        frames::FRAMES_DECODED.load(Ordering::Relaxed) - decoded,
        frames::FRAMES_SKIPPED.load(Ordering::Relaxed) - skipped,
    ))
}

/// The zip of a chunk's JPEGs, as the server writes it.
fn zip_of(jpegs: &[Vec<u8>]) -> Result<Vec<u8>> {
    let mut zip = ZipChunk::with_capacity(jpegs.iter().map(|j| j.len() + 100).sum::<usize>() + 100);
    for (i, j) in jpegs.iter().enumerate() {
        zip.add(&entry_name(i, "jpeg"), j)?;
    }
    Ok(zip.finish()?)
}

/// Builds chunk `n` cold: a fresh reader, a seek to its key frame, decode forward; the wanted
/// frames are JPEG-encoded on other threads while decoding goes on
/// (`codec::encode_jpegs_overlapped`, as the server does).
pub fn build_chunk(path: &Path, plan: &Plan, n: u64, quality: u8) -> Result<Built> {
    let mut counts = (0, 0);
    let jpegs = encode_jpegs_overlapped::<anyhow::Error>(quality, 0.0, |submit| {
        counts = decode_chunk(path, plan, n, submit)?;
        Ok(())
    })?;
    Ok(Built {
        zip: zip_of(&jpegs)?,
        decoded: counts.0,
        skipped: counts.1,
    })
}

/// Like [`build_chunk`], but every frame is encoded on the decoding thread (no overlap): what
/// the overlap gains. Same bytes.
pub fn build_chunk_serial(path: &Path, plan: &Plan, n: u64, quality: u8) -> Result<Built> {
    let mut enc = FrameJpegEncoder::new(quality, 0.0);
    let mut jpegs = Vec::new();
    let (decoded, skipped) = decode_chunk(path, plan, n, &mut |f| {
        jpegs.push(enc.encode(&f)?);
        Ok(())
    })?;
    Ok(Built {
        zip: zip_of(&jpegs)?,
        decoded,
        skipped,
    })
}

/// Decodes chunk `n`'s frames from its key frame and nothing else (no JPEG, no zip), as
/// [`build_chunk`] does: the decode share of a cold build. Returns the frames decoded.
pub fn decode_only(path: &Path, plan: &Plan, n: u64) -> Result<u64> {
    Ok(decode_chunk(path, plan, n, &mut |_| Ok(()))?.0)
}

/// Sequential playback's floor: one decode of the whole video from the start, every frame
/// JPEG-encoded, zips cut every `chunk_size` frames. Returns the chunks and the frames decoded.
pub fn build_all(path: &Path, plan: &Plan, quality: u8) -> Result<(Vec<Vec<u8>>, u64)> {
    let mut reader = FrameReader::open(path)?;
    let mut chunks = Vec::with_capacity(plan.chunks() as usize);
    let mut number = 0u64;
    for n in 0..plan.chunks() {
        let (_, last) = plan.chunk_frames(n);
        let jpegs = encode_jpegs_overlapped::<anyhow::Error>(quality, 0.0, |submit| {
            while number <= last {
                let Some(frame) = reader.next_frame()? else {
                    bail!("the video ended at frame {number} of {}", plan.frames);
                };
                submit(frame)?;
                number += 1;
            }
            Ok(())
        })?;
        chunks.push(zip_of(&jpegs)?);
    }
    Ok((chunks, number))
}
