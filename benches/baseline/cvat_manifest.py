#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A self-contained port of CVAT v2.73.0's manifest generator.

This reproduces ``utils/dataset_manifest/create.py`` of CVAT (MIT licence,
Intel Corporation and CVAT.ai Corporation) together with the parts of
``core.py``, ``utils.py`` and ``errors.py`` it uses, so that the Rust
``manifest`` tool can be compared with it byte for byte and timed against it.
The behaviour follows /work/shared/spec/media.md sections 2-8 (CVAT v2.73.0,
PyAV 16.0.1):

* video: a full decode with PyAV in decoder output order (two containers, one
  reading sequentially, one for the relaxed key-frame seek check of CVAT PR
  #9994 with ``SEEK_MISMATCH_UPPER_BOUND = 200`` and the previous landing
  pts), the first frame must be an I frame, non-increasing PTS/DTS are errors,
  the running key-frame ratio rule ``index // max(K, 1) >= 3 * chunk_size + 1``
  unless ``--force``, checksum = md5 of ``frame.to_image().tobytes()`` (RGB24),
  display-matrix rotation for ``resolution`` only, chapters;
* images: a directory (recursive) or a glob pattern, image MIME types only,
  related (context) images detected and excluded from the frames,
  ``meta.related_images``, EXIF orientation > 4 swaps width/height, checksum
  = md5 of ``Image.open(f).tobytes()``, sorting (natural = natsort.os_sorted);
* ``manifest.jsonl`` + ``index.json`` written like CVAT (compact JSON).

Differences from CVAT's CLI, none of which changes the files written:
* no tqdm progress bar on stderr (so stderr holds only the error message);
* an extra ``--chunk-size`` option (CVAT's CLI always uses 36);
* OpenCV is not imported: a rotation changes only the manifest ``resolution``
  and the bounding box size is computed exactly like ``rotate_image`` does
  (``cv.getRotationMatrix2D`` uses cos/sin of ``angle * pi / 180``).

Usage:
    python cvat_manifest.py [--force] [--output-dir DIR]
        [--sorting {lexicographical,natural,predefined,random}]
        [--chunk-size N] source
"""

import argparse
import hashlib
import io
import json
import math
import mimetypes
import os
import re
import sys
from bisect import bisect_left
from contextlib import closing
from enum import Enum
from inspect import isgenerator
from io import StringIO
from itertools import islice
from pathlib import Path
from random import shuffle
from typing import Any, Callable, Iterator, Optional, Union

import av
from av import VideoFrame
from av.video.frame import PictureType
from natsort import os_sorted
from PIL import Image

# --------------------------------------------------------------------------- errors.py


class BasicError(Exception):
    """The base class for all errors of the manifest code."""


class InvalidImageError(BasicError):
    pass


class InvalidVideoError(BasicError):
    pass


class InvalidManifestError(BasicError):
    pass


# --------------------------------------------------------------------------- utils.py

SEEK_MISMATCH_UPPER_BOUND = 200


def rotated_size(width: int, height: int, angle: float) -> tuple[int, int]:
    """The (width, height) of CVAT's ``rotate_image`` output.

    ``rotate_image`` builds ``cv.getRotationMatrix2D((w/2, h/2), angle, 1.0)``,
    whose [0,0] and [0,1] entries are cos and sin of ``angle * CV_PI / 180``, and
    warps into ``bound_w = int(h*|sin| + w*|cos|)``, ``bound_h = int(h*|cos| + w*|sin|)``.
    """
    rad = angle * (math.pi / 180)
    abs_cos = abs(math.cos(rad))
    abs_sin = abs(math.sin(rad))
    bound_w = int(height * abs_sin + width * abs_cos)
    bound_h = int(height * abs_cos + width * abs_sin)
    return bound_w, bound_h


def md5_hash(frame: Union[str, Image.Image, VideoFrame, io.RawIOBase]) -> str:
    buffer = frame

    if isinstance(buffer, str):
        buffer = Path(buffer).read_bytes()

    if hasattr(buffer, "read"):
        buffer = buffer.read()

    if isinstance(buffer, VideoFrame):
        buffer = buffer.to_image()

    if isinstance(buffer, Image.Image):
        buffer = buffer.tobytes()

    return hashlib.md5(buffer).hexdigest()  # nosec


def _define_data_type(path) -> Optional[str]:
    return mimetypes.guess_type(path)[0]


def is_video(media_file) -> bool:
    data_type = _define_data_type(media_file)
    return data_type is not None and data_type.startswith("video")


def is_image(media_file) -> bool:
    data_type = _define_data_type(media_file)
    return (
        data_type is not None
        and data_type.startswith("image")
        and not data_type.startswith(
            ("image/svg", "image/x.point-cloud-data", "image/x.kitti-velodyne")
        )
    )


def _prepare_context_list(files):
    return sorted(filter(is_image, files))


def find_related_images_2d(
    dataset_paths: list[Path],
    *,
    root_path: Path,
    is_scene_path: Callable[[Path], bool],
) -> tuple[set[Path], dict[Path, list[Path]]]:
    """CVAT's 2D related-image detection (``find_related_images`` for images).

    Layout: ``<dir>/<name>.<ext>`` with context images in
    ``<dir>/related_images/<name>_<ext>/``. Returns the scene paths and
    ``{scene path: sorted related image paths}``, all relative to ``root_path``.
    Related images are kept only for scenes that exist.
    """
    rel_paths = [Path(os.path.relpath(p, root_path)) for p in dataset_paths]

    regular_images: set[Path] = set()
    related_images: dict[Path, list[Path]] = {}
    for image_path in rel_paths:
        parents = image_path.parents
        if len(parents) >= 3 and parents[1].name == "related_images":
            regular_image_path = parents[2] / ".".join(parents[0].name.rsplit("_", maxsplit=1))
            related_images.setdefault(regular_image_path, []).append(image_path)
        elif is_scene_path(image_path):
            regular_images.add(image_path)

    related_images = {
        image_path: _prepare_context_list(image_related)
        for image_path, image_related in related_images.items()
        if image_related
        if image_path in regular_images
    }
    return regular_images, related_images


class SortingMethod(str, Enum):
    LEXICOGRAPHICAL = "lexicographical"
    NATURAL = "natural"
    PREDEFINED = "predefined"
    RANDOM = "random"

    @classmethod
    def choices(cls):
        return tuple((x.value, x.name) for x in cls)

    def __str__(self):
        return self.value


def sort(images, sorting_method=SortingMethod.LEXICOGRAPHICAL, func=None):
    if sorting_method == SortingMethod.LEXICOGRAPHICAL:
        return sorted(images, key=func)
    elif sorting_method == SortingMethod.NATURAL:
        return os_sorted(images, key=func)
    elif sorting_method == SortingMethod.PREDEFINED:
        return images
    elif sorting_method == SortingMethod.RANDOM:
        shuffle(images)
        return images
    else:
        raise NotImplementedError()


# --------------------------------------------------------------------------- core.py


def _rescale(value: int, src, dest) -> int:
    """Rescale a timestamp between time bases, rounding half up."""
    return int(value * src / dest + 0.5)


class VideoStreamReader:
    def __init__(self, source_path, chunk_size, force):
        self._source_path = source_path
        self._frames_number = None
        self._force = force
        self._upper_bound = 3 * chunk_size + 1
        self._chapters: list[dict[str, Any]] = []

        with closing(av.open(self.source_path, mode="r")) as container:
            video_stream = VideoStreamReader._get_video_stream(container)
            for packet in container.demux(video_stream):
                for frame in packet.decode():
                    # check type of first frame
                    if frame.pict_type != PictureType.I:
                        raise InvalidVideoError("The first frame is not a key frame")

                    # get video resolution (after the display rotation, if any)
                    width, height = frame.width, frame.height
                    rotation = frame.rotation
                    if rotation:
                        width, height = rotated_size(width, height, rotation)
                    self.width, self.height = width, height
                    return

    @property
    def source_path(self):
        return self._source_path

    @staticmethod
    def _get_video_stream(container):
        video_stream = next(stream for stream in container.streams if stream.type == "video")
        video_stream.thread_type = "AUTO"
        return video_stream

    def __len__(self):
        assert (
            self._frames_number is not None
        ), "The length will not be available until the reader is iterated all the way through at least once"

        return self._frames_number

    @property
    def resolution(self):
        return (self.width, self.height)

    @property
    def chapters(self):
        return self._chapters

    @staticmethod
    def _decode(container, video_stream):
        for packet in container.demux(video_stream):
            for frame in packet.decode():
                yield frame

    def validate_key_frame(self, container, video_stream, key_frame, prev_seek_pts):
        """Relaxed key-frame check (CVAT PR #9994).

        Seek (backward, on the stream's pts) to the key frame and decode forward at
        most SEEK_MISMATCH_UPPER_BOUND frames. The key frame is valid if that
        reproduces its pts and checksum and the seek did not land where the
        previous valid key frame's seek landed. Returns the landing pts (the pts
        of the first frame decoded after the seek) or None for an invalid frame.
        """
        container.seek(offset=key_frame["pts"], stream=video_stream)

        seek_pts = None
        for decoded_count, frame in enumerate(self._decode(container, video_stream)):
            if decoded_count >= SEEK_MISMATCH_UPPER_BOUND:
                break

            if decoded_count == 0:
                seek_pts = frame.pts
                if seek_pts == prev_seek_pts:
                    # The seek lands on the previous key frame: this one can't be reached
                    return None

            if frame.pts < key_frame["pts"]:
                continue

            if md5_hash(frame) != key_frame["md5"] or frame.pts != key_frame["pts"]:
                return None
            return seek_pts

        return None

    def _build_chapters(self, container, video_stream, frame_pts: list[tuple[int, int]]):
        chapters = container.chapters()
        if not chapters:
            return []

        frame_pts = sorted(frame_pts, key=lambda x: x[1])
        indexes = [x[0] for x in frame_pts]
        pts_list = [x[1] for x in frame_pts]

        def closest(t):
            pos = bisect_left(pts_list, t)
            if pos == 0:
                return 0
            if pos == len(pts_list):
                return pos - 1
            if abs(pts_list[pos] - t) < abs(pts_list[pos - 1] - t):
                return pos
            return pos - 1

        result = []
        for chapter in chapters:
            start = _rescale(chapter["start"], chapter["time_base"], video_stream.time_base)
            end = _rescale(chapter["end"], chapter["time_base"], video_stream.time_base)
            i = closest(start)
            j = closest(end)
            stop = indexes[j] if end > pts_list[-1] else indexes[j] - 1
            result.append(
                {
                    "start": indexes[i],
                    "stop": stop,
                    "metadata": chapter["metadata"],
                    "id": chapter["id"],
                }
            )
        return result

    def __iter__(self) -> Iterator[Union[int, tuple[int, int, str]]]:
        """
        Iterate over video frames and yield key frames or indexes.

        Yields:
            Union[Tuple[int, int, str], int]: (frame index, frame timestamp, frame MD5) or frame index.
        """
        # Open containers for reading frames and checking movement on them
        with (
            closing(av.open(self.source_path, mode="r")) as reading_container,
            closing(av.open(self.source_path, mode="r")) as checking_container,
        ):
            reading_v_stream = self._get_video_stream(reading_container)
            checking_v_stream = self._get_video_stream(checking_container)
            prev_pts: Optional[int] = None
            prev_dts: Optional[int] = None
            prev_seek_pts: Optional[int] = None
            index, key_frame_count = 0, 0
            frame_pts: list[tuple[int, int]] = []

            for packet in reading_container.demux(reading_v_stream):
                for frame in packet.decode():
                    # Check PTS and DTS sequences for validity
                    if None not in {frame.pts, prev_pts} and frame.pts <= prev_pts:
                        raise InvalidVideoError("Detected non-increasing PTS sequence in the video")
                    if None not in {frame.dts, prev_dts} and frame.dts <= prev_dts:
                        raise InvalidVideoError("Detected non-increasing DTS sequence in the video")
                    prev_pts, prev_dts = frame.pts, frame.dts
                    frame_pts.append((index, frame.pts))

                    if frame.key_frame:
                        key_frame_data = {
                            "pts": frame.pts,
                            "md5": md5_hash(frame),
                        }

                        # Check that it is possible to seek to this key frame using frame.pts
                        seek_pts = self.validate_key_frame(
                            checking_container,
                            checking_v_stream,
                            key_frame_data,
                            prev_seek_pts,
                        )

                        if seek_pts is not None:
                            prev_seek_pts = seek_pts
                            key_frame_count += 1
                            yield (index, key_frame_data["pts"], key_frame_data["md5"])
                        else:
                            yield index
                    else:
                        yield index

                    index += 1
                    key_frame_ratio = index // (key_frame_count or 1)

                    # Check if the number of key frames meets the upper bound
                    if key_frame_ratio >= self._upper_bound and not self._force:
                        raise InvalidVideoError(
                            "The number of keyframes is not enough for smooth iteration over the video"
                        )

            if key_frame_count == 0:
                raise InvalidVideoError("Could not find any valid keyframes in the video")

            self._chapters = self._build_chapters(reading_container, reading_v_stream, frame_pts)

            # Update frames number if not already set
            if not self._frames_number:
                self._frames_number = index


class DatasetImagesReader:
    def __init__(
        self,
        sources: list[str],
        *,
        start: int = 0,
        step: int = 1,
        stop: Optional[int] = None,
        meta: Optional[dict[str, dict[str, list[str]]]] = None,
        sorting_method: SortingMethod = SortingMethod.PREDEFINED,
        use_image_hash: bool = False,
        **kwargs,
    ):
        self._is_generator_used = isgenerator(sources)

        if not self._is_generator_used:
            self._sources = sort(sources, sorting_method)
        else:
            if sorting_method != SortingMethod.PREDEFINED:
                raise ValueError("Only SortingMethod.PREDEFINED can be used with generator")
            self._sources = sources
        self._meta = meta
        self._data_dir = kwargs.get("data_dir", None)
        self._use_image_hash = use_image_hash
        self._start = start
        self._stop = stop if stop or self._is_generator_used else len(sources) - 1
        if self._stop is None:
            raise ValueError("The stop parameter should be passed when generator is used")
        self._step = step

    @property
    def start(self):
        return self._start

    @property
    def stop(self):
        return self._stop

    @property
    def step(self):
        return self._step

    def _get_img_properties(self, image: str) -> dict[str, Any]:
        if self._data_dir:
            img_name = os.path.relpath(image, self._data_dir)
        else:
            img_name = os.path.basename(image)

        try:
            img = Image.open(image, mode="r")
            orientation = img.getexif().get(274, 1)
            checksum = md5_hash(img) if self._use_image_hash else None
        except Exception as ex:
            raise InvalidImageError(f"failed to parse image file '{img_name}'") from ex

        name, extension = os.path.splitext(img_name)
        image_properties = {
            "name": name.replace("\\", "/"),
            "extension": extension,
        }

        width, height = img.width, img.height
        if orientation > 4:
            width, height = height, width
        image_properties["width"] = width
        image_properties["height"] = height

        # CVAT v2.73.0 writes "checksum" before "meta" (spec §2.4 and §7; older
        # releases wrote "meta" first)
        if self._use_image_hash:
            image_properties["checksum"] = checksum

        if self._meta and img_name in self._meta:
            image_properties["meta"] = self._meta[img_name]

        return image_properties

    def __iter__(self):
        sources = (
            self._sources
            if self._is_generator_used
            else islice(self._sources, self.start, self.stop + 1, self.step)
        )

        for idx in range(self.stop + 1):
            if idx in range(self.start, self.stop + 1, self.step):
                image = next(sources)
                yield self._get_img_properties(image)
            else:
                yield dict()

    @property
    def range_(self):
        return range(self._start, self._stop + 1, self._step)

    def __len__(self):
        return len(self.range_)


class _Manifest:
    FILE_NAME = "manifest.jsonl"
    VERSION = "1.1"
    TYPE: str  # must be set externally

    def __init__(self, path):
        assert path, "A path to manifest file not found"
        self._path = os.path.join(path, self.FILE_NAME) if os.path.isdir(path) else path

    @property
    def path(self):
        return self._path

    def get_header_lines_count(self) -> int:
        if self.TYPE == "video":
            return 3
        elif self.TYPE == "images":
            return 2
        assert False, f"Unknown manifest type '{self.TYPE}'"


class _Index:
    FILE_NAME = "index.json"

    def __init__(self, path):
        assert path and os.path.isdir(path), "No index directory path"
        self._path = os.path.join(path, self.FILE_NAME)
        self._index = {}

    @property
    def path(self):
        return self._path

    def dump(self):
        with open(self._path, "w") as index_file:
            json.dump(self._index, index_file, separators=(",", ":"))

    def remove(self):
        os.remove(self._path)

    def create(self, manifest, *, skip):
        assert os.path.exists(manifest), "A manifest file not exists, index cannot be created"
        with open(manifest, "r+") as manifest_file:
            while skip:
                manifest_file.readline()
                skip -= 1
            image_number = 0
            position = manifest_file.tell()
            line = manifest_file.readline()
            while line:
                if line.strip():
                    self._index[image_number] = position
                    image_number += 1
                    position = manifest_file.tell()
                line = manifest_file.readline()

    def is_empty(self) -> bool:
        return not len(self._index)


class _ManifestManager:
    def __init__(self, path, create_index=True):
        self._manifest = _Manifest(path)
        self._index = _Index(os.path.dirname(self._manifest.path))
        self._reader = None
        self._create_index = create_index

    def set_index(self):
        if self._create_index and os.path.exists(self._index.path):
            self._index.remove()
        self._index.create(self._manifest.path, skip=self._manifest.get_header_lines_count())
        if self._create_index:
            self._index.dump()

    def is_empty(self) -> bool:
        return self._index.is_empty()


class VideoManifestManager(_ManifestManager):
    def __init__(self, manifest_path, create_index=True):
        super().__init__(manifest_path, create_index)
        setattr(self._manifest, "TYPE", "video")

    def link(self, media_file, chunk_size=36, force=False):
        self._reader = VideoStreamReader(media_file, chunk_size, force)

    def _write_base_information(self, file):
        base_info = {
            "version": self._manifest.VERSION,
            "type": self._manifest.TYPE,
            "properties": {
                "name": os.path.basename(self._reader.source_path),
                "resolution": self._reader.resolution,
                "length": len(self._reader),
                "chapters": self._reader.chapters,
            },
        }
        for key, value in base_info.items():
            json_item = json.dumps({key: value}, separators=(",", ":"))
            file.write(f"{json_item}\n")

    def _write_core_part(self, file):
        for item in self._reader:
            if isinstance(item, tuple):
                json_item = json.dumps(
                    {"number": item[0], "pts": item[1], "checksum": item[2]}, separators=(",", ":")
                )
                file.write(f"{json_item}\n")

    def create(self):
        """Creating and saving a manifest file"""
        tmp_file = StringIO()
        self._write_core_part(tmp_file)

        with open(self._manifest.path, "w") as manifest_file:
            self._write_base_information(manifest_file)
            manifest_file.write(tmp_file.getvalue())

        self.set_index()

        if self.is_empty() and not self._reader._force:
            raise InvalidManifestError("Empty manifest file has been created")


class ImageManifestManager(_ManifestManager):
    def __init__(self, manifest_path, create_index=True):
        super().__init__(manifest_path, create_index)
        setattr(self._manifest, "TYPE", "images")

    def link(self, **kwargs):
        self._reader = DatasetImagesReader(**kwargs)

    def _write_base_information(self, file):
        base_info = {
            "version": self._manifest.VERSION,
            "type": self._manifest.TYPE,
        }
        for key, value in base_info.items():
            json_line = json.dumps({key: value}, separators=(",", ":"))
            file.write(f"{json_line}\n")

    def _write_core_part(self, file, obj):
        for image_properties in obj:
            json_line = json.dumps(
                {key: value for key, value in image_properties.items()}, separators=(",", ":")
            )
            file.write(f"{json_line}\n")

    def create(self, content=None):
        """Creating and saving a manifest file for the specialized dataset"""
        with open(self._manifest.path, "w") as manifest_file:
            self._write_base_information(manifest_file)
            obj = content if content else self._reader
            self._write_core_part(manifest_file, obj)

        self.set_index()


# --------------------------------------------------------------------------- create.py


def get_args():
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--force",
        action="store_true",
        help="Use this flag to prepare the manifest file for video data "
        "if by default the video does not meet the requirements and a manifest file is not prepared",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        help="Directory where the manifest file will be saved",
        default=Path.cwd(),
    )
    parser.add_argument(
        "--sorting",
        choices=[v[0] for v in SortingMethod.choices()],
        type=str,
        default=SortingMethod.LEXICOGRAPHICAL.value,
    )
    parser.add_argument(
        "--chunk-size",
        type=int,
        default=36,
        help="Chunk size for the video key-frame ratio rule (CVAT's CLI always uses 36)",
    )
    parser.add_argument("source", type=Path, help="Source paths")
    return parser.parse_args()


def main():
    args = get_args()

    manifest_directory: Path = args.output_dir.resolve()
    manifest_directory.mkdir(parents=True, exist_ok=True)
    source: Path = args.source.expanduser().resolve()

    if not source.is_file():  # directory/pattern with images
        data_dir = None
        if source.is_dir():
            data_dir = source
            pattern = "**/*"
        else:
            items = source.parts
            position = 0
            try:
                for item in items:
                    if set(item) & {"*", "?", "[", "]"}:
                        break
                    position += 1
                else:
                    raise Exception("Wrong positional argument")

                data_dir = Path(*items[:position])

                assert data_dir.parents, "Wrong pattern: there must be a common root"
            except Exception as ex:
                sys.exit(str(ex))

            pattern = os.fspath(source.relative_to(data_dir))

        sources = list(filter(is_image, data_dir.glob(pattern)))

        # If the source is a glob expression, we need additional processing
        abs_root = source
        while re.search(r"[*?\[\]]", os.fspath(abs_root)):
            abs_root = abs_root.parent

        scene_paths, related_images = find_related_images_2d(
            sources,
            root_path=abs_root,
            # backward compatibility, deprecated in https://github.com/cvat-ai/cvat/pull/9757
            is_scene_path=(lambda p: not "related_images" in p.parts),
        )
        sources = [p for p in sources if p.relative_to(abs_root) in scene_paths]
        meta = {
            os.fspath(k): {"related_images": [ri.as_posix() for ri in related_images[k]]}
            for k in related_images
        }
        try:
            assert len(sources), "A images was not found"
            manifest = ImageManifestManager(manifest_path=os.fspath(manifest_directory))
            manifest.link(
                # The paths are sorted as strings (spec §6: code-point order of the
                # full path string for lexicographical sorting).
                sources=[os.fspath(p) for p in sources],
                meta=meta,
                sorting_method=args.sorting,
                use_image_hash=True,
                data_dir=os.fspath(data_dir),
            )
            manifest.create()
        except Exception as ex:
            sys.exit(str(ex))
    else:  # video
        try:
            assert is_video(source), "You can specify a video path or a directory/pattern with images"
            manifest = VideoManifestManager(manifest_path=os.fspath(manifest_directory))
            manifest.link(media_file=os.fspath(source), chunk_size=args.chunk_size, force=args.force)
            manifest.create()
        except Exception as ex:
            sys.exit(str(ex))

    print("The manifest file has been prepared")


if __name__ == "__main__":
    main()
