"""Key frames of a video with PyAV (FFmpeg), decoded from a seekable file, written as JPEG.

Selection rule (written down, applied in presentation order):

1. Only key frames are decoded: the decoder is told ``skip_frame = "NONKEY"``, so for H.264 it
   outputs the IDR/I frames the encoder placed (every GOP start, plus scene cuts when the encoder
   detects them) and never spends time or memory on P/B frames.
2. A key frame is taken when it is at least ``min_interval_s`` seconds after the last frame taken
   (``0`` takes every key frame). The first key frame is always a candidate.
3. Scene change (optional, ``scene_threshold > 0``): a candidate is taken only if its 32x18
   grayscale thumbnail differs from the last taken frame's by a mean absolute difference of at
   least ``scene_threshold`` (0-255 scale); near-identical key frames of a static scene are skipped.
4. At most ``max_frames`` frames are taken; decoding stops as soon as the cap is reached.

Frames wider than ``max_width`` are scaled down (aspect ratio kept, even dimensions) and encoded
as baseline JPEG by FFmpeg's MJPEG encoder (``yuvj420p``, quality ``jpeg_quality`` on FFmpeg's
2-31 q scale, lower is better).

Memory: the demuxer reads through the file object (``shared.ranged``: a few blocks), one decoded
frame and one JPEG at a time. A corrupt, truncated or non-video file is ``InvalidFileError``, and
so is a video stream FFmpeg has no decoder for (PyAV then gives the stream no codec context: a
single flipped bit in the MP4's ``hdlr``, ``stsd`` or sample-entry boxes did that).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, BinaryIO

import av
import av.error
import numpy as np
import numpy.typing as npt

from shared.errors import InvalidFileError

_THUMB = (32, 18)


@dataclass(frozen=True)
class Selection:
    max_frames: int
    min_interval_s: float
    scene_threshold: float
    max_width: int
    jpeg_quality: int


@dataclass(frozen=True)
class KeyFrame:
    index: int  # 0-based among the frames taken
    keyframe_number: int  # 0-based among the key frames decoded
    pts_seconds: float
    width: int
    height: int
    jpeg: bytes


@dataclass
class VideoFacts:
    codec: str | None = None
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None
    frames_declared: int | None = None
    keyframes_decoded: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "codec": self.codec,
            "width": self.width,
            "height": self.height,
            "duration_seconds": self.duration_seconds,
            "frames_declared": self.frames_declared,
            "keyframes_decoded": self.keyframes_decoded,
        }


def encode_jpeg(frame: av.VideoFrame, *, max_width: int, quality: int) -> tuple[bytes, int, int]:
    """(JPEG bytes, width, height) of ``frame``, scaled down to ``max_width`` if wider."""
    width, height = frame.width, frame.height
    if width > max_width:
        height = max(2, round(height * max_width / width / 2) * 2)
        width = max_width - max_width % 2
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height = width, height
    encoder.pix_fmt = "yuvj420p"
    encoder.time_base = Fraction(1, 25)
    encoder.options = {"q:v": str(quality)}
    image = frame.reformat(width=width, height=height, format="yuvj420p")
    data = b"".join(bytes(p) for p in encoder.encode(image)) + b"".join(bytes(p) for p in encoder.encode(None))
    if not data.startswith(b"\xff\xd8"):
        raise InvalidFileError("the JPEG encoder produced no image")
    return data, width, height


def warm_codecs() -> None:
    """Init-time warm-up (snapshotted with SnapStart): open the H.264 decoder and the MJPEG
    encoder once, so FFmpeg's codec tables are initialised before the first video."""
    av.CodecContext.create("h264", "r")
    encoder = av.CodecContext.create("mjpeg", "w")
    encoder.width, encoder.height, encoder.pix_fmt = 16, 16, "yuvj420p"
    encoder.time_base = Fraction(1, 25)
    encoder.open()


def _thumbnail(frame: av.VideoFrame) -> npt.NDArray[np.float32]:
    small = frame.reformat(width=_THUMB[0], height=_THUMB[1], format="gray")
    return np.asarray(small.to_ndarray(), dtype=np.float32)


def key_frames(
    stream_file: BinaryIO,
    selection: Selection,
    *,
    label: str,
    facts: VideoFacts,
    before_frame: Callable[[], None] = lambda: None,
) -> Iterator[KeyFrame]:
    """Yield the selected key frames of the video in ``stream_file`` (see the module docstring).

    ``before_frame`` runs before each key frame is decoded (the caller's deadline check);
    ``facts`` is filled as the container is read, so a failure still reports what was seen.
    """
    try:
        container = av.open(stream_file, mode="r")
    except av.error.FFmpegError as e:
        raise InvalidFileError(f"{label}: not a readable video container: {e}") from e
    with container:
        if not container.streams.video:
            raise InvalidFileError(f"{label}: the container has no video stream")
        stream = container.streams.video[0]
        codec = stream.codec_context
        if codec is None:  # FFmpeg has no decoder for the stream's codec id (a damaged sample entry)
            raise InvalidFileError(f"{label}: the video stream's codec is unknown to FFmpeg (no decoder)")
        facts.codec = codec.name
        facts.width, facts.height = codec.width or None, codec.height or None
        facts.frames_declared = int(stream.frames) or None
        if container.duration is not None:
            facts.duration_seconds = round(container.duration / av.time_base, 3)
        codec.skip_frame = "NONKEY"
        taken = 0
        last_time: float | None = None
        last_thumb: npt.NDArray[np.float32] | None = None
        try:
            frames = container.decode(stream)
            while taken < selection.max_frames:
                before_frame()
                frame = next(frames, None)
                if frame is None:
                    break
                if not frame.key_frame:  # some decoders still emit non-key frames; never take them
                    continue
                number = facts.keyframes_decoded
                facts.keyframes_decoded += 1
                time = float(frame.time) if frame.time is not None else 0.0
                if last_time is not None and time - last_time < selection.min_interval_s:
                    continue
                thumb = _thumbnail(frame) if selection.scene_threshold > 0 else None
                if (
                    thumb is not None
                    and last_thumb is not None
                    and float(np.abs(thumb - last_thumb).mean()) < selection.scene_threshold
                ):
                    continue
                jpeg, width, height = encode_jpeg(frame, max_width=selection.max_width, quality=selection.jpeg_quality)
                yield KeyFrame(taken, number, round(time, 3), width, height, jpeg)
                taken += 1
                last_time, last_thumb = time, thumb
        except av.error.FFmpegError as e:
            raise InvalidFileError(f"{label}: undecodable video data: {e}") from e
    if facts.keyframes_decoded == 0:
        raise InvalidFileError(f"{label}: no decodable key frame")
