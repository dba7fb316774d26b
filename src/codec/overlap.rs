//! Encoding overlapped with decoding: the decoder runs on the calling thread, one encoder per
//! core runs beside it, and the results come back in order. Chunk builds (JPEG zips) and
//! dataset exports with images (PNG or JPEG frames) both go through [`encode_overlapped`].

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use super::CodecError;
use crate::media::DecodedFrame;

/// Frames held at most between the decoder and the encoders (queued plus being encoded, plus
/// encoded ones waiting for an earlier frame): bounds memory (a 1080p frame is ~3 MB) while
/// keeping every encoder busy.
const MAX_IN_FLIGHT: usize = 6;

/// Runs `produce` (typically: decode frames) on the calling thread while the frames it submits
/// are encoded on other threads, each with its own encoder made by `new_encoder`, and hands
/// the encoded frames to `emit` in submission order, on the calling thread, as soon as each
/// one and every frame before it are done. `submit` blocks while the encoders are behind, so at
/// most [`MAX_IN_FLIGHT`] frames are in flight whatever the speed of `emit`.
///
/// The first error wins: a failed encode or `emit` makes the next `submit` fail with it; an
/// error from `produce` is returned once the encoders have stopped.
pub fn encode_overlapped<E, Enc>(
    new_encoder: impl Fn() -> Enc + Sync,
    produce: impl FnOnce(&mut dyn FnMut(DecodedFrame) -> Result<(), E>) -> Result<(), E>,
    mut emit: impl FnMut(Vec<u8>) -> Result<(), E>,
) -> Result<(), E>
where
    E: From<CodecError> + Send,
    Enc: FnMut(&DecodedFrame) -> Result<Vec<u8>, E>,
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
    let (done_tx, done_rx) = mpsc::channel::<(usize, Result<Vec<u8>, E>)>();
    let failed = AtomicBool::new(false);
    let mut order = InOrder::default();
    let new_encoder = &new_encoder;
    let produced = std::thread::scope(|s| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                let (job_rx, done_tx, failed) = (Arc::clone(&job_rx), done_tx.clone(), &failed);
                s.spawn(move || {
                    let mut enc = new_encoder();
                    loop {
                        let job = job_rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        let Ok((i, frame)) = job else { return };
                        // After a failure, drain the queue without encoding.
                        if failed.load(Ordering::Relaxed) {
                            continue;
                        }
                        let r = enc(&frame);
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
                order.store(done, &mut emit)?;
            }
            job_tx.send((submitted, frame)).map_err(|_| {
                E::from(CodecError::EncoderThread(
                    "the encoder threads stopped".into(),
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
            return Err(CodecError::EncoderThread("an encoder thread panicked".into()).into());
        }
        produced.map(|()| submitted)
    });
    // Every encoder has stopped: all results are in the channel. A failure of `emit` or an
    // encoder during `produce` is what made it stop, so it comes first.
    let mut result = Ok(());
    while let Ok(done) = done_rx.try_recv() {
        if result.is_ok() {
            result = order.store(done, &mut emit);
        }
    }
    result?;
    let submitted = produced?;
    if order.next != submitted {
        return Err(
            CodecError::EncoderThread(format!("frame {} was not encoded", order.next)).into(),
        );
    }
    Ok(())
}

/// Encoded frames waiting for an earlier one, and the next index to emit.
#[derive(Default)]
struct InOrder {
    waiting: BTreeMap<usize, Vec<u8>>,
    next: usize,
}

impl InOrder {
    fn store<E>(
        &mut self,
        (i, r): (usize, Result<Vec<u8>, E>),
        emit: &mut impl FnMut(Vec<u8>) -> Result<(), E>,
    ) -> Result<(), E> {
        self.waiting.insert(i, r?);
        while let Some(bytes) = self.waiting.remove(&self.next) {
            self.next += 1;
            emit(bytes)?;
        }
        Ok(())
    }
}
