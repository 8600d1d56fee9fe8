"""Sample sensor data for UC9: real H.264 MP4s encoded with PyAV, PCD in all three encodings,
LAS and LAZ written by laspy, plus broken files.

``generate(s3, access_point_arn, objects=N, seed=S)`` writes N files through the access point
(keys under ``sensors/``), deterministic for a seed:

- valid files cycling through six kinds: MP4 (H.264, 160x120, 12 fps, 3 s = 36 frames, a keyframe
  every ``KEYFRAME_INTERVAL`` = 12 frames and scene-cut detection off, so exactly 3 keyframes),
  PCD ``ascii``, PCD ``binary``, PCD ``binary_compressed`` (LZF, column-major, as PCL writes it),
  LAS 1.2 (point format 1) and LAZ (the same, LASzip-compressed through lazrs). Point clouds hold
  a few hundred to two thousand points; PCD ones include NaN points and (0, 0, 0) "no return"
  points on purpose;
- ``N // 20`` broken files (5 %, inside the default 10 % tolerance), cycling through: an MP4 cut
  in half (its ``moov`` index is at the end, so it cannot be opened), a PCD ``binary`` cut short,
  a PCD ``binary_compressed`` whose LZF stream has a back-reference before the start, a LAS
  declaring more points than it holds, a text file named ``.mp4`` and a PCD without a DATA line;
- two objects the suffix filters skip (``README.txt`` and a ``.bag``), not counted in N.

Keys include a space, non-ASCII characters and the same file name in two folders, so output keys
must be derived from the full source key. ``SampleSet.expected`` holds, for every valid key, the
figures the pipeline must report (computed here from the generated values, not by the parsers);
for a video, ``car_boxes`` maps each keyframe's index to where the car was drawn in it.
"""

from __future__ import annotations

import datetime
import functools
import io
import math
import random
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import av
import laspy
import numpy as np
import numpy.typing as npt

# The model artifact the template's ModelDataUrl names, built as scripts/package-model.sh builds
# it; the runner calls stack_parameters(session) before it resolves the template.
from local.samples.autonomous_driving_model import stack_parameter_values, stack_parameters

__all__ = ["SampleSet", "generate", "stack_parameter_values", "stack_parameters"]

# The LAS header creation date of every sample (the day the canonical events were written).
SAMPLE_DATE = datetime.date(2026, 12, 1)
PREFIX = "sensors/"
BROKEN_EVERY = 20
KEYFRAME_INTERVAL = 12
FPS = 12
VIDEO_SECONDS = 3
WIDTH, HEIGHT = 160, 120
KINDS = ("mp4", "pcd-ascii", "pcd-binary", "pcd-binary_compressed", "las", "laz")
_FOLDERS = ("vehicle-01/front camera", "vehicle-02/lidar", "vehicle-ä/roof", "vehicle-01/lidar")
LAS_SCALE = 0.01


@dataclass(frozen=True)
class SampleSet:
    """What ``generate`` wrote: every key, and which the pipeline must read, reject or skip."""

    keys: tuple[str, ...]
    valid: tuple[str, ...]
    corrupt: tuple[str, ...]
    ignored: tuple[str, ...]
    expected: dict[str, dict[str, Any]]


# --- LZF (liblzf's format, the compression PCL uses for binary_compressed) -------------------------
def lzf_compress(data: bytes) -> bytes:
    """Greedy LZF compression (3-byte hash matches, back-references up to 8192 bytes, 264 long)."""
    out = bytearray()
    literal = bytearray()
    table: dict[bytes, int] = {}
    i, n = 0, len(data)

    def flush() -> None:
        for k in range(0, len(literal), 32):
            part = literal[k : k + 32]
            out.append(len(part) - 1)
            out.extend(part)
        literal.clear()

    while i < n:
        if i + 2 < n:
            key = data[i : i + 3]
            ref = table.get(key)
            table[key] = i
            if ref is not None and i - ref - 1 < 8192:
                offset = i - ref - 1
                limit = min(264, n - i)
                length = 3
                while length < limit and data[ref + length] == data[i + length]:
                    length += 1
                flush()
                code = length - 2
                if code < 7:
                    out.append((code << 5) | (offset >> 8))
                else:
                    out.append((7 << 5) | (offset >> 8))
                    out.append(code - 7)
                out.append(offset & 0xFF)
                i += length
                continue
        literal.append(data[i])
        i += 1
    flush()
    return bytes(out)


# --- point clouds --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cloud:
    x: npt.NDArray[np.float32]
    y: npt.NDArray[np.float32]
    z: npt.NDArray[np.float32]
    intensity: npt.NDArray[np.float32]


def make_cloud(rng: random.Random, points: int, *, nan_points: int = 0, zero_points: int = 0) -> Cloud:
    gen = np.random.default_rng(rng.getrandbits(32))
    x = gen.uniform(-40, 60, points).astype(np.float32)
    y = gen.uniform(-25, 25, points).astype(np.float32)
    z = gen.uniform(-2, 6, points).astype(np.float32)
    intensity = gen.integers(0, 4096, points).astype(np.float32)
    for index in range(nan_points):
        (x, y, z)[index % 3][index] = np.nan
    for index in range(nan_points, nan_points + zero_points):
        x[index] = y[index] = z[index] = 0
    return Cloud(x, y, z, intensity)


def expected_figures(x: Any, y: Any, z: Any, intensity: Any | None) -> dict[str, Any]:
    """The QC figures by the definitions in pointcloud_qc/stats.py, from the values themselves."""
    xs, ys, zs = (np.asarray(v, dtype=np.float64) for v in (x, y, z))
    n = len(xs)
    bad = ~(np.isfinite(xs) & np.isfinite(ys) & np.isfinite(zs))
    zero = (xs == 0) & (ys == 0) & (zs == 0)

    def bound(v: Any) -> dict[str, float] | None:
        finite = v[np.isfinite(v)]
        return {"min": float(finite.min()), "max": float(finite.max())} if finite.size else None

    bounds = {"x": bound(xs), "y": bound(ys), "z": bound(zs)}
    density = None
    if bounds["x"] and bounds["y"]:
        area = (bounds["x"]["max"] - bounds["x"]["min"]) * (bounds["y"]["max"] - bounds["y"]["min"])
        density = (n - int(bad.sum())) / area if area > 0 else None
    ints = None if intensity is None else np.asarray(intensity, dtype=np.float64)
    return {
        "point_count": n,
        "nonfinite_points": int(bad.sum()),
        "zero_points": int(zero.sum()),
        "bounds": bounds,
        "density_per_m2": density,
        "intensity_min": None if ints is None else float(ints.min()),
        "intensity_max": None if ints is None else float(ints.max()),
    }


def write_pcd(cloud: Cloud, encoding: str) -> bytes:
    """A PCD v0.7 file with fields x y z intensity (float32) in the given DATA encoding."""
    n = len(cloud.x)
    header = (
        "# .PCD v0.7 - Point Cloud Data file format\n"
        "VERSION 0.7\nFIELDS x y z intensity\nSIZE 4 4 4 4\nTYPE F F F F\nCOUNT 1 1 1 1\n"
        f"WIDTH {n}\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS {n}\nDATA {encoding}\n"
    ).encode("ascii")
    columns = (cloud.x, cloud.y, cloud.z, cloud.intensity)
    if encoding == "ascii":
        # repr of each value as a Python float (NaN is "nan"), row by row
        values = zip(*(c.tolist() for c in columns), strict=True)
        lines = [f"{x!r} {y!r} {z!r} {intensity!r}" for x, y, z, intensity in values]
        return header + ("\n".join(lines) + "\n").encode("ascii")
    if encoding == "binary":
        rows = np.empty(n, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("intensity", "<f4")])
        for name, column in zip(("x", "y", "z", "intensity"), columns, strict=True):
            rows[name] = column
        return header + rows.tobytes()
    raw = b"".join(np.asarray(c, dtype="<f4").tobytes() for c in columns)
    packed = lzf_compress(raw)
    return header + len(packed).to_bytes(4, "little") + len(raw).to_bytes(4, "little") + packed


def las_points(rng: random.Random, points: int) -> dict[str, npt.NDArray[np.int32]]:
    gen = np.random.default_rng(rng.getrandbits(32))
    return {
        "X": gen.integers(-4000, 6000, points).astype(np.int32),
        "Y": gen.integers(-2500, 2500, points).astype(np.int32),
        "Z": gen.integers(-200, 600, points).astype(np.int32),
        "intensity": gen.integers(0, 65535, points).astype(np.int32),
    }


def write_las(values: dict[str, npt.NDArray[np.int32]], *, compress: bool) -> bytes:
    header = laspy.LasHeader(point_format=1, version="1.2")
    header.scales = np.array([LAS_SCALE] * 3)
    header.offsets = np.array([0.0, 0.0, 0.0])
    # laspy stamps today's date into the header: a fixed one keeps the samples (and the ETags the
    # canonical events name) the same on every day.
    header.creation_date = SAMPLE_DATE
    las = laspy.LasData(header)
    las.X, las.Y, las.Z = values["X"], values["Y"], values["Z"]
    las.intensity = values["intensity"].astype(np.uint16)
    buffer = io.BytesIO()
    las.write(buffer, do_compress=compress, laz_backend=laspy.LazBackend.Lazrs if compress else None)
    return buffer.getvalue()


def las_expected(values: dict[str, npt.NDArray[np.int32]]) -> dict[str, Any]:
    # laspy scales as X * scale + offset in float64; the same arithmetic here.
    return expected_figures(
        values["X"] * LAS_SCALE + 0.0, values["Y"] * LAS_SCALE + 0.0, values["Z"] * LAS_SCALE + 0.0, values["intensity"]
    )


# --- video ------------------------------------------------------------------------------------------
def car_box(index: int, *, width: int = WIDTH, height: int = HEIGHT, moving: bool = True) -> tuple[int, int, int, int]:
    """Where ``write_mp4`` draws the car in frame ``index``: [x, y, w, h] in pixels (the ground
    truth a COCO box of that frame is compared with)."""
    car_w, car_h = max(4, width // 5), max(2, height // 5)
    left = (index * max(1, width // 30)) % (width - car_w) if moving else width // 3
    return left, height * 3 // 5, car_w, car_h


def write_mp4(
    rng: random.Random,
    *,
    seconds: int = VIDEO_SECONDS,
    fps: int = FPS,
    gop: int = KEYFRAME_INTERVAL,
    width: int = WIDTH,
    height: int = HEIGHT,
    moving: bool = True,
) -> bytes:
    """A real H.264 MP4 (libx264 bundled with PyAV): a road scene with a car driving across
    (``moving``) or standing still, a keyframe exactly every ``gop`` frames (scene-cut off)."""
    car = rng.choice(((220, 30, 30), (30, 60, 220), (240, 200, 20), (20, 160, 60)))
    sign = rng.choice(((255, 255, 255), (250, 120, 0)))
    return _encoded_mp4(car, sign, seconds=seconds, fps=fps, gop=gop, width=width, height=height, moving=moving)


# The picture depends on nothing but these arguments and libx264 (one thread) encodes the same
# frames to the same bytes, so a sample set of thousands of videos encodes each variant once.
@functools.lru_cache(maxsize=64)
def _encoded_mp4(
    car: tuple[int, int, int],
    sign: tuple[int, int, int],
    *,
    seconds: int,
    fps: int,
    gop: int,
    width: int,
    height: int,
    moving: bool,
) -> bytes:
    sky, road = (150, 190, 235), (90, 90, 95)
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream(
            "libx264",
            rate=fps,
            options={
                "g": str(gop),
                "keyint_min": str(gop),
                "sc_threshold": "0",
                "bf": "0",
                "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0",
                "threads": "1",
            },
        )
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.time_base = Fraction(1, fps)
        for index in range(seconds * fps):
            image = np.zeros((height, width, 3), dtype=np.uint8)
            image[: height // 2] = sky
            image[height // 2 :] = road
            left, top, car_w, car_h = car_box(index, width=width, height=height, moving=moving)
            image[top : top + car_h, left : left + car_w] = car
            image[height // 6 : height // 3, width * 3 // 4 : width * 3 // 4 + max(2, width // 12)] = sign
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = index
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


# --- broken files -----------------------------------------------------------------------------------
def _broken(kind: int, rng: random.Random) -> tuple[str, bytes, str]:
    """(suffix, bytes, what is wrong) of broken file ``kind`` (cycling through six kinds)."""
    match kind % 6:
        case 0:
            video = write_mp4(rng, seconds=1)
            return ".mp4", video[: len(video) // 2], "truncated MP4"
        case 1:
            data = write_pcd(make_cloud(rng, 300), "binary")
            return ".pcd", data[: len(data) - 500], "truncated PCD binary"
        case 2:
            damaged = bytearray(write_pcd(make_cloud(rng, 300), "binary_compressed"))
            start = damaged.index(b"DATA binary_compressed\n") + len(b"DATA binary_compressed\n") + 8
            damaged[start : start + 2] = bytes([0xE0 | 0x1F, 0xFF])  # back-reference before the start
            return ".pcd", bytes(damaged), "corrupt LZF stream"
        case 3:
            las_file = bytearray(write_las(las_points(rng, 200), compress=False))
            las_file[107:111] = (10_000).to_bytes(4, "little")  # legacy point count beyond the data
            return ".las", bytes(las_file), "LAS point count beyond the data"
        case 4:
            return ".mp4", b"this is a text file with a video suffix\n", "not a video"
        case _:
            return ".pcd", b"# .PCD v0.7\nVERSION 0.7\nFIELDS x y z\nSIZE 4 4 4\n", "PCD header without DATA"


def _folder(i: int) -> str:
    return _FOLDERS[i % len(_FOLDERS)]


def sample_file(kind: str, rng: random.Random) -> tuple[str, bytes, dict[str, Any]]:
    """(suffix, bytes, expected figures) of one valid file of ``kind`` (one of ``KINDS``)."""
    if kind == "mp4":
        frames = VIDEO_SECONDS * FPS
        return (
            ".mp4",
            write_mp4(rng),
            {
                "format": "MP4",
                "frames": frames,
                "keyframes": math.ceil(frames / KEYFRAME_INTERVAL),
                "width": WIDTH,
                "height": HEIGHT,
                # frame index of each keyframe -> the car's box in it, [x, y, w, h] in pixels
                "car_boxes": {i: list(car_box(i)) for i in range(0, frames, KEYFRAME_INTERVAL)},
            },
        )
    if kind.startswith("pcd-"):
        encoding = kind.removeprefix("pcd-")
        points = rng.randint(300, 2000)
        cloud = make_cloud(rng, points, nan_points=rng.randint(1, 9), zero_points=rng.randint(1, 9))
        figures = expected_figures(cloud.x, cloud.y, cloud.z, cloud.intensity)
        return ".pcd", write_pcd(cloud, encoding), {"format": "PCD", "encoding": encoding, **figures}
    values = las_points(rng, rng.randint(300, 2000))
    compress = kind == "laz"
    return (
        (".laz" if compress else ".las"),
        write_las(values, compress=compress),
        {"format": "LAZ" if compress else "LAS", **las_expected(values)},
    )


def generate(s3: Any, access_point_arn: str, *, objects: int, seed: int = 0) -> SampleSet:
    """Write ``objects`` sensor files (one in twenty broken) and two files the filters skip."""
    if objects < 0:
        raise ValueError("objects must be >= 0")
    rng = random.Random(seed)
    broken_count = objects // BROKEN_EVERY
    valid_count = objects - broken_count

    def put(key: str, body: bytes) -> None:
        s3.put_object(Bucket=access_point_arn, Key=key, Body=body)

    valid: list[str] = []
    corrupt: list[str] = []
    expected: dict[str, dict[str, Any]] = {}
    for i in range(valid_count):
        kind = KINDS[i % len(KINDS)]
        suffix, data, facts = sample_file(kind, rng)
        # The same file name in two folders ("vehicle-01/..."): result keys must not collide.
        key = f"{PREFIX}{_folder(i)}/capture_{i // len(KINDS):03d}{suffix}"
        put(key, data)
        valid.append(key)
        expected[key] = facts
    for j in range(broken_count):
        suffix, data, _what = _broken(j, rng)
        key = f"{PREFIX}{_folder(j)}/broken_{j:03d}{suffix}"
        put(key, data)
        corrupt.append(key)
    ignored = [f"{PREFIX}README.txt", f"{PREFIX}vehicle-01/drive.bag"]
    for key in ignored:
        put(key, b"not a sensor file of this pipeline\n")
    return SampleSet(
        keys=tuple(valid + corrupt + ignored),
        valid=tuple(valid),
        corrupt=tuple(corrupt),
        ignored=tuple(ignored),
        expected=expected,
    )
