//! Opening a video, describing it, demuxing its packets and seeking by pts.

use std::path::{Path, PathBuf};

use ff::ffi;
use ff::packet::Ref as _;
use ffmpeg_next as ff;

use super::{init, MediaError, Rational, Result};

/// One demuxed packet of the video stream, without its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketInfo {
    /// Presentation timestamp in stream time base, if the container gave one.
    pub pts: Option<i64>,
    /// Decoding timestamp in stream time base, if the container gave one.
    pub dts: Option<i64>,
    /// Byte position in the file, or -1 when unknown.
    pub pos: i64,
    /// Payload size in bytes.
    pub size: u32,
    /// The container flags this packet as a key frame (a random-access point).
    pub key: bool,
    /// The demuxer marks the packet as to be decoded but not shown (e.g. before an MP4 edit
    /// list's start): it produces no output frame.
    pub discard: bool,
}

/// Picture type of a decoded frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PictureType {
    I,
    P,
    B,
    Other,
    /// The decoder does not type its frames (e.g. Cinepak).
    Unknown,
}

/// What a video says about itself, before decoding anything.
#[derive(Debug, Clone)]
pub struct VideoInfo {
    /// Container format name, e.g. `mov,mp4,m4a,3gp,3g2,mj2`.
    pub container: String,
    /// Codec short name, e.g. `h264`.
    pub codec: String,
    /// Index of the video stream in the container.
    pub stream_index: usize,
    /// Coded width and height (before display rotation).
    pub width: u32,
    pub height: u32,
    /// Pixel format name, e.g. `yuv420p`.
    pub pixel_format: String,
    /// Stream time base.
    pub time_base: Rational,
    /// Average frame rate, if known.
    pub frame_rate: Option<Rational>,
    /// Stream duration in seconds, if known.
    pub duration_s: Option<f64>,
    /// Frame count from the container header, if any (often wrong: use a packet scan).
    pub container_frames: Option<u64>,
    /// Display-matrix rotation in degrees, counter-clockwise, in (-180, 180]; 0 when absent.
    pub rotation: f64,
    /// Colour tags from the stream (informational): matrix, range.
    pub color_space: String,
    pub color_range: String,
    /// The decoder reorders frames (B-frames or similar).
    pub has_b_frames: bool,
}

impl VideoInfo {
    /// Width and height after display rotation, as CVAT v2.73 computes them: the bounding box of
    /// the frame rotated by `rotation` degrees (OpenCV `getRotationMatrix2D`, truncated to ints).
    pub fn display_size(&self) -> (u32, u32) {
        rotated_size(self.width, self.height, self.rotation)
    }
}

/// The bounding box of a `w`×`h` frame rotated by `degrees`, as CVAT's `rotate_image` computes it
/// (`int(h*|sin| + w*|cos|)`, `int(h*|cos| + w*|sin|)`).
pub fn rotated_size(w: u32, h: u32, degrees: f64) -> (u32, u32) {
    if degrees == 0.0 {
        return (w, h);
    }
    let rad = degrees * std::f64::consts::PI / 180.0;
    let (sin, cos) = (rad.sin().abs(), rad.cos().abs());
    let (w, h) = (w as f64, h as f64);
    ((h * sin + w * cos) as u32, (h * cos + w * sin) as u32)
}

/// An opened video file and its first video stream.
pub struct VideoSource {
    path: PathBuf,
    input: ff::format::context::Input,
    stream_index: usize,
    info: VideoInfo,
}

impl VideoSource {
    /// Opens `path` and selects its first video stream (CVAT takes the first stream whose type is
    /// video, not FFmpeg's "best" one).
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with(path, Probe::Full)
    }

    /// Opens `path` for indexing: like [`open`](Self::open), but skips FFmpeg's stream probing
    /// (which decodes frames) when the container header already describes the video stream
    /// (MP4/MOV, Matroska/WebM). The pixel format and frame rate may then be unknown.
    pub fn open_for_indexing(path: &Path) -> Result<Self> {
        Self::open_with(path, Probe::IfHeaderIncomplete)
    }

    fn open_with(path: &Path, probe: Probe) -> Result<Self> {
        init();
        let meta = std::fs::metadata(path).map_err(|source| MediaError::Io {
            path: path.to_owned(),
            source,
        })?;
        if meta.is_dir() {
            return Err(MediaError::NotMedia {
                path: path.to_owned(),
                reason: "it is a directory".into(),
            });
        }
        if meta.len() == 0 {
            return Err(MediaError::NotMedia {
                path: path.to_owned(),
                reason: "the file is empty".into(),
            });
        }
        let input = open_input(path, probe).map_err(|e| MediaError::NotMedia {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let stream = input
            .streams()
            .find(|s| s.parameters().medium() == ff::media::Type::Video && !is_attached_picture(s))
            .ok_or_else(|| MediaError::NoVideoStream {
                path: path.to_owned(),
            })?;
        let stream_index = stream.index();
        let info = describe(&input, &stream)?;
        Ok(VideoSource {
            path: path.to_owned(),
            input,
            stream_index,
            info,
        })
    }

    /// The path this source was opened from.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the container says about the video stream.
    pub fn info(&self) -> &VideoInfo {
        &self.info
    }

    /// Index of the selected video stream.
    pub fn stream_index(&self) -> usize {
        self.stream_index
    }

    /// Codec parameters of the video stream, for building decoders.
    pub(crate) fn parameters(&self) -> ff::codec::Parameters {
        self.input
            .stream(self.stream_index)
            .expect("stream index was validated on open")
            .parameters()
    }

    /// Container chapters: `(id, time_base, start, end, metadata)`, metadata in container order.
    pub fn chapters(&self) -> Vec<Chapter> {
        self.input
            .chapters()
            .map(|c| Chapter {
                id: c.id(),
                time_base: c.time_base().into(),
                start: c.start(),
                end: c.end(),
                metadata: c
                    .metadata()
                    .iter()
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .collect(),
            })
            .collect()
    }

    /// Reads the next packet of the video stream (other streams are skipped). `Ok(None)` at the
    /// end of the file. Corrupt packets the demuxer can resync past are skipped, as FFmpeg does.
    pub(crate) fn read_packet(&mut self) -> Result<Option<ff::Packet>> {
        let mut packet = ff::Packet::empty();
        let mut packets = 0usize;
        loop {
            match packet.read(&mut self.input) {
                Ok(()) => {
                    if packet.stream() == self.stream_index {
                        return Ok(Some(packet));
                    }
                }
                Err(ff::Error::Eof) => return Ok(None),
                Err(ff::Error::InvalidData) => {}
                Err(e) => {
                    return Err(MediaError::Demux {
                        path: self.path.clone(),
                        packets,
                        reason: e.to_string(),
                    })
                }
            }
            packets += 1;
        }
    }

    /// Demuxes every packet of the video stream without decoding, calling `visit` with each
    /// packet's description and payload. This is I/O-bound: the floor of any indexing.
    pub fn scan_packets(&mut self, mut visit: impl FnMut(&PacketInfo, &[u8])) -> Result<usize> {
        let mut count = 0usize;
        loop {
            let packet = match self.read_packet() {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(MediaError::Demux { path, reason, .. }) => {
                    return Err(MediaError::Demux {
                        path,
                        packets: count,
                        reason,
                    })
                }
                Err(e) => return Err(e),
            };
            let info = packet_info(&packet);
            visit(&info, packet.data().unwrap_or(&[]));
            count += 1;
        }
        Ok(count)
    }

    /// Seeks the video stream to the last key frame at or before `pts` (stream time base):
    /// `av_seek_frame(ctx, stream, pts, AVSEEK_FLAG_BACKWARD)`, the per-stream seek CVAT uses.
    /// (`ffmpeg-next`'s `Input::seek` seeks all streams in `AV_TIME_BASE` units instead.)
    pub fn seek(&mut self, pts: i64) -> Result<()> {
        // SAFETY: the context pointer is valid for the lifetime of `self.input`; av_seek_frame
        // only reads/updates demuxer state.
        let ret = unsafe {
            ffi::av_seek_frame(
                self.input.as_mut_ptr(),
                self.stream_index as i32,
                pts,
                ffi::AVSEEK_FLAG_BACKWARD,
            )
        };
        if ret < 0 {
            return Err(MediaError::Seek {
                path: self.path.clone(),
                pts,
                reason: ff::Error::from(ret).to_string(),
            });
        }
        Ok(())
    }
}

/// Whether to run `avformat_find_stream_info`.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Probe {
    Full,
    IfHeaderIncomplete,
}

/// `avformat_open_input`, then `avformat_find_stream_info` unless `probe` allows skipping it.
fn open_input(
    path: &Path,
    probe: Probe,
) -> std::result::Result<ff::format::context::Input, ff::Error> {
    use std::os::unix::ffi::OsStrExt;
    let c_path =
        std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(|_| ff::Error::InvalidData)?;
    // SAFETY: standard libavformat open sequence; on every error path the context is closed.
    unsafe {
        let mut ps = std::ptr::null_mut();
        let r = ffi::avformat_open_input(
            &mut ps,
            c_path.as_ptr(),
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        );
        if r != 0 {
            return Err(ff::Error::from(r));
        }
        if probe == Probe::Full || !header_describes_video(ps) {
            let r = ffi::avformat_find_stream_info(ps, std::ptr::null_mut());
            if r < 0 {
                ffi::avformat_close_input(&mut ps);
                return Err(ff::Error::from(r));
            }
        }
        Ok(ff::format::context::Input::wrap(ps))
    }
}

/// True for MP4/MOV and Matroska/WebM files whose first video stream has a codec and a size
/// in the header: their headers carry everything decoding needs.
unsafe fn header_describes_video(ctx: *mut ffi::AVFormatContext) -> bool {
    let name = cstr((*(*ctx).iformat).name).unwrap_or_default();
    if !(name.contains("mp4") || name.contains("matroska")) {
        return false;
    }
    let streams = std::slice::from_raw_parts((*ctx).streams, (*ctx).nb_streams as usize);
    streams
        .iter()
        .map(|&st| &*(*st).codecpar)
        .find(|p| p.codec_type == ffi::AVMediaType::AVMEDIA_TYPE_VIDEO)
        .is_some_and(|p| {
            p.codec_id != ffi::AVCodecID::AV_CODEC_ID_NONE && p.width > 0 && p.height > 0
        })
}

/// A container chapter.
#[derive(Debug, Clone)]
pub struct Chapter {
    pub id: i64,
    pub time_base: Rational,
    pub start: i64,
    pub end: i64,
    pub metadata: Vec<(String, String)>,
}

pub(crate) fn packet_info(p: &ff::Packet) -> PacketInfo {
    PacketInfo {
        pts: p.pts(),
        dts: p.dts(),
        pos: p.position() as i64,
        size: p.size() as u32,
        key: p.is_key(),
        // SAFETY: reading a plain field of a valid packet.
        discard: unsafe { (*p.as_ptr()).flags } & ffi::AV_PKT_FLAG_DISCARD != 0,
    }
}

fn is_attached_picture(s: &ff::format::stream::Stream) -> bool {
    s.disposition()
        .contains(ff::format::stream::Disposition::ATTACHED_PIC)
}

fn describe(
    input: &ff::format::context::Input,
    stream: &ff::format::stream::Stream,
) -> Result<VideoInfo> {
    let params = stream.parameters();
    // SAFETY: codecpar is valid while the stream is; we only read plain fields.
    let (width, height, pix_fmt, color_space, color_range, video_delay) = unsafe {
        let p = &*params.as_ptr();
        (
            p.width.max(0) as u32,
            p.height.max(0) as u32,
            p.format,
            p.color_space,
            p.color_range,
            p.video_delay,
        )
    };
    let codec = params.id().name().to_owned();
    let pixel_format = if pix_fmt < 0 {
        "unknown".to_owned()
    } else {
        // SAFETY: av_get_pix_fmt_name accepts any value and returns null for unknown ones.
        unsafe {
            cstr(ffi::av_get_pix_fmt_name(std::mem::transmute::<
                i32,
                ffi::AVPixelFormat,
            >(pix_fmt)))
        }
        .unwrap_or_else(|| "unknown".into())
    };
    let tb: Rational = stream.time_base().into();
    let duration_s = (stream.duration() > 0)
        .then(|| tb.to_f64().map(|t| stream.duration() as f64 * t))
        .flatten();
    let rate: Rational = stream.avg_frame_rate().into();
    let rotation = stream
        .side_data()
        .find(|sd| sd.kind() == ff::codec::packet::side_data::Type::DisplayMatrix)
        .and_then(|sd| display_rotation(sd.data()))
        .unwrap_or(0.0);
    // SAFETY: both functions accept any enum value and return a static string or null.
    let color_space = unsafe { cstr(ffi::av_color_space_name(color_space)) }.unwrap_or_default();
    let color_range = unsafe { cstr(ffi::av_color_range_name(color_range)) }.unwrap_or_default();
    Ok(VideoInfo {
        container: input.format().name().to_owned(),
        codec,
        stream_index: stream.index(),
        width,
        height,
        pixel_format,
        time_base: tb,
        frame_rate: (rate.num > 0 && rate.den > 0).then_some(rate),
        duration_s,
        container_frames: (stream.frames() > 0).then_some(stream.frames() as u64),
        rotation,
        color_space,
        color_range,
        has_b_frames: video_delay > 0,
    })
}

/// The rotation angle of an FFmpeg display matrix (9 × i32), counter-clockwise degrees.
fn display_rotation(data: &[u8]) -> Option<f64> {
    if data.len() < 36 {
        return None;
    }
    let mut m = [0i32; 9];
    for (i, v) in m.iter_mut().enumerate() {
        *v = i32::from_ne_bytes(data[i * 4..i * 4 + 4].try_into().ok()?);
    }
    // SAFETY: `m` is a valid 3x3 matrix of i32 as av_display_rotation_get expects.
    let angle = unsafe { ffi::av_display_rotation_get(m.as_ptr()) };
    if angle.is_nan() {
        return None;
    }
    // av_display_rotation_get gives the clockwise-to-undo angle with inverted sign convention;
    // normalise to (-180, 180] and drop -0.0.
    let mut a = -angle;
    while a <= -180.0 {
        a += 360.0;
    }
    while a > 180.0 {
        a -= 360.0;
    }
    Some(if a == 0.0 { 0.0 } else { a })
}

unsafe fn cstr(p: *const std::os::raw::c_char) -> Option<String> {
    if p.is_null() {
        None
    } else {
        Some(std::ffi::CStr::from_ptr(p).to_string_lossy().into_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_size_follows_opencv_bounding_box() {
        assert_eq!(rotated_size(1280, 720, 0.0), (1280, 720));
        assert_eq!(rotated_size(1280, 720, 90.0), (720, 1280));
        assert_eq!(rotated_size(1280, 720, -90.0), (720, 1280));
        assert_eq!(rotated_size(1280, 720, 180.0), (1280, 720));
        // 45°: int(720*0.7071 + 1280*0.7071) = int(1414.21) = 1414 both ways.
        assert_eq!(rotated_size(1280, 720, 45.0), (1414, 1414));
    }
}
