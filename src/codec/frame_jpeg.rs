//! Decoded video frames → JPEG for compressed zip chunks, encoded on other threads while the
//! caller goes on decoding.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use super::{encode_jpeg, rotate, CodecError, Raster, Result, RgbImage};
use crate::media::{ColorMode, DecodedFrame, RgbConverter};

/// Frames a chunk build holds at most between the decoder and the JPEG encoders (queued plus
/// being encoded): bounds memory (a 1080p frame is ~3 MB) while keeping every encoder busy.
const MAX_IN_FLIGHT: usize = 6;

/// Encodes decoded video frames as the JPEGs of compressed zip chunks: CVAT's RGB conversion,
/// rotation by the display matrix, [`encode_jpeg`]. Holds reusable buffers; one per thread.
pub struct FrameJpegEncoder {
    quality: u8,
    rotation: f64,
    rgb: RgbConverter,
}

impl FrameJpegEncoder {
    /// An encoder for frames shown rotated by `rotation` degrees (the display matrix; a multiple
    /// of 90), at JPEG `quality`.
    pub fn new(quality: u8, rotation: f64) -> Self {
        FrameJpegEncoder {
            quality,
            rotation,
            rgb: RgbConverter::new(ColorMode::Untagged),
        }
    }

    /// Encodes one frame.
    pub fn encode(&mut self, frame: &DecodedFrame) -> Result<Vec<u8>> {
        let (w, h, data) = self.rgb.to_rgb(frame)?;
        let mut raster = Raster::Rgb(RgbImage::new(w, h, data)?);
        if self.rotation != 0.0 {
            raster = rotate(raster, self.rotation)?;
        }
        encode_jpeg(&raster, self.quality)
    }
}

/// Encoded frames by submission index, and the first encoding error.
#[derive(Default)]
struct Collected {
    jpegs: Vec<Option<Vec<u8>>>,
    error: Option<CodecError>,
}

impl Collected {
    fn store(&mut self, (i, r): (usize, Result<Vec<u8>>)) {
        match r {
            Ok(j) => self.jpegs[i] = Some(j),
            Err(e) => {
                self.error.get_or_insert(e);
            }
        }
    }
}

/// Runs `produce` (typically: decode frames) on the calling thread while the frames it submits
/// are JPEG-encoded ([`FrameJpegEncoder`]) on other threads, and returns the JPEGs in
/// submission order. At most a few frames are in flight: `submit` blocks while the encoders
/// are behind. The first error wins: a failed encode makes the next `submit` fail with it, an
/// error from `produce` is returned once the encoders have stopped.
pub fn encode_jpegs_overlapped<E>(
    quality: u8,
    rotation: f64,
    produce: impl FnOnce(&mut dyn FnMut(DecodedFrame) -> Result<(), E>) -> Result<(), E>,
) -> Result<Vec<Vec<u8>>, E>
where
    E: From<CodecError>,
{
    // Encoders: one per core, at least one; the decoder (FFmpeg's own frame threads) shares
    // the cores, so more would only queue.
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_IN_FLIGHT - 1);
    let (job_tx, job_rx) = mpsc::sync_channel::<(usize, DecodedFrame)>(MAX_IN_FLIGHT - workers);
    // The receiver belongs to the encoders only: if they all stop, `submit` fails instead of
    // blocking on a full queue.
    let job_rx = Arc::new(Mutex::new(job_rx));
    let (done_tx, done_rx) = mpsc::channel::<(usize, Result<Vec<u8>>)>();
    let failed = AtomicBool::new(false);
    let mut out = Collected::default();
    let produced = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let (job_rx, done_tx, failed) = (Arc::clone(&job_rx), done_tx.clone(), &failed);
                s.spawn(move || {
                    let mut enc = FrameJpegEncoder::new(quality, rotation);
                    loop {
                        let job = job_rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok((i, frame)) = job else { return };
                        // After a failure, drain the queue without encoding.
                        if failed.load(Ordering::Relaxed) {
                            continue;
                        }
                        let r = enc.encode(&frame);
                        drop(frame);
                        if r.is_err() {
                            failed.store(true, Ordering::Relaxed);
                        }
                        if done_tx.send((i, r)).is_err() {
                            return;
                        }
                    }
                })
            })
            .collect();
        drop((job_rx, done_tx));
        let mut submitted = 0usize;
        let produced = produce(&mut |frame| {
            while let Ok(done) = done_rx.try_recv() {
                out.store(done);
            }
            if let Some(e) = out.error.take() {
                return Err(e.into());
            }
            out.jpegs.push(None);
            job_tx.send((submitted, frame)).map_err(|_| {
                E::from(CodecError::EncoderThread(
                    "the JPEG encoder threads stopped".into(),
                ))
            })?;
            submitted += 1;
            Ok(())
        });
        drop(job_tx);
        let mut panicked = false;
        for h in handles {
            panicked |= h.join().is_err();
        }
        if panicked {
            return Err(CodecError::EncoderThread("a JPEG encoder thread panicked".into()).into());
        }
        produced
    });
    // Every encoder has stopped: all results are in the channel.
    while let Ok(done) = done_rx.try_recv() {
        out.store(done);
    }
    produced?;
    if let Some(e) = out.error {
        return Err(e.into());
    }
    out.jpegs
        .into_iter()
        .enumerate()
        .map(|(i, j)| {
            j.ok_or_else(|| {
                E::from(CodecError::EncoderThread(format!(
                    "frame {i} was not encoded"
                )))
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::media::FrameReader;
    use ffmpeg_next as ff;

    fn frames(video: &str, n: usize) -> Vec<DecodedFrame> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/videos")
            .join(video);
        let mut r = FrameReader::open(&path).unwrap();
        (0..n).map(|_| r.next_frame().unwrap().unwrap()).collect()
    }

    #[test]
    fn overlapped_encoding_keeps_order_and_bytes() {
        let input = frames("h264_bframes.mp4", 30);
        let mut enc = FrameJpegEncoder::new(70, 0.0);
        let serial: Vec<_> = input.iter().map(|f| enc.encode(f).unwrap()).collect();
        let again = frames("h264_bframes.mp4", 30);
        let got = encode_jpegs_overlapped::<CodecError>(70, 0.0, |submit| {
            again.into_iter().try_for_each(submit)
        })
        .unwrap();
        assert_eq!(got, serial);
    }

    #[test]
    fn overlapped_encoding_reports_errors() {
        // An error from the producer is returned.
        let r = encode_jpegs_overlapped::<CodecError>(70, 0.0, |submit| {
            for f in frames("h264_bframes.mp4", 3) {
                submit(f)?;
            }
            Err(CodecError::NoFrames)
        });
        assert!(matches!(r, Err(CodecError::NoFrames)), "{r:?}");
        // An encoding error (an empty frame) is returned, and stops the producer.
        let mut submitted = 0;
        let r = encode_jpegs_overlapped::<CodecError>(70, 0.0, |submit| {
            submit(DecodedFrame {
                frame: ff::frame::Video::empty(),
            })?;
            for f in frames("h264_bframes.mp4", 60) {
                submit(f)?;
                submitted += 1;
            }
            Ok(())
        });
        assert!(matches!(r, Err(CodecError::Media(_))), "{r:?}");
        assert!(submitted < 60, "the producer was not stopped");
    }
}
