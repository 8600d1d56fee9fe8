"""A seekable, read-only file object over one S3 object, read through ranged GETs.

Decoders that want a file (PyAV's demuxer, laspy, a header parser) get ``RangedObjectFile``
instead of the whole body: memory is at most ``max_blocks`` blocks of ``block_size`` bytes
whatever the object's size, and only the blocks actually read are fetched. Every GET carries
``IfMatch`` with the ETag the listing saw, so a file replaced after it was listed fails with
``SourceChangedError`` (HTTP 412) instead of mixing two versions; the size must match the listed
one too. The deadline is checked before every request, so a slow read raises
``DeadlineExceededError`` (transient: the Map's Retry resumes with a fresh budget).

Service errors are mapped to ``shared.errors`` by ``shared.aws.mapped_errors``.
"""

from __future__ import annotations

import io
import re
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from shared.aws import mapped_errors
from shared.errors import InvalidFileError, InvalidInputError, PipelineError, SourceChangedError

if TYPE_CHECKING:
    from collections.abc import Buffer

    from mypy_boto3_s3 import S3Client

    from shared.retry import Deadline

MiB = 1024 * 1024
DEFAULT_BLOCK_SIZE = MiB
DEFAULT_MAX_BLOCKS = 4
_CONTENT_RANGE_RE = re.compile(r"bytes (\d+)-(\d+)/(\d+)")


class RangedObjectFile(io.RawIOBase):
    """``s3://bucket/key`` (``bucket`` may be an access point ARN) as a seekable binary file.

    ``size`` and ``etag`` are the listed values; ``etag`` "" sends no ``IfMatch``. Blocks are
    cached least-recently-used, at most ``max_blocks`` of them. ``requests`` and
    ``bytes_fetched`` say what the reads cost.
    """

    def __init__(
        self,
        s3: S3Client,
        bucket: str,
        key: str,
        *,
        size: int,
        etag: str,
        deadline: Deadline,
        block_size: int = DEFAULT_BLOCK_SIZE,
        max_blocks: int = DEFAULT_MAX_BLOCKS,
    ) -> None:
        super().__init__()
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise InvalidInputError(f"size must be an integer >= 0, got {size!r}")
        if block_size < 4096 or max_blocks < 1:
            raise InvalidInputError("block_size must be >= 4096 and max_blocks >= 1")
        self._s3 = s3
        self._bucket = bucket
        self.key = key
        self.size = size
        self.etag = etag
        self._deadline = deadline
        self.block_size = block_size
        self.max_blocks = max_blocks
        self._blocks: OrderedDict[int, bytes] = OrderedDict()
        self._pos = 0
        self.requests = 0
        self.bytes_fetched = 0
        # The last typed error a read raised. Decoders that call read() from native code (FFmpeg,
        # lazrs) may turn it into their own error; the caller re-raises this one instead.
        self.failure: PipelineError | None = None

    # --- io.RawIOBase -------------------------------------------------------------------------
    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_SET:
            target = offset
        elif whence == io.SEEK_CUR:
            target = self._pos + offset
        elif whence == io.SEEK_END:
            target = self.size + offset
        else:
            raise ValueError(f"invalid whence {whence!r}")
        if target < 0:
            raise OSError(f"negative seek position {target}")
        self._pos = target
        return target

    def readinto(self, buffer: Buffer) -> int:
        view = memoryview(buffer).cast("B")
        wanted = min(len(view), max(0, self.size - self._pos))
        done = 0
        while done < wanted:
            index, offset = divmod(self._pos, self.block_size)
            block = self._block(index)
            take = min(wanted - done, len(block) - offset)
            if take <= 0:  # cannot happen with a consistent size; never loop forever
                break
            view[done : done + take] = block[offset : offset + take]
            done += take
            self._pos += take
        return done

    def readall(self) -> bytes:
        raise io.UnsupportedOperation("RangedObjectFile never reads a whole object at once; read(n)")

    # --- helpers ----------------------------------------------------------------------------------
    def read_exactly(self, count: int, what: str) -> bytes:
        """``count`` bytes or ``InvalidFileError`` saying the file is truncated inside ``what``."""
        if count < 0:
            raise InvalidFileError(f"{self.key}: negative length for {what}")
        if count > self.size - self._pos:
            raise InvalidFileError(
                f"{self.key}: truncated: {what} needs {count} bytes at offset {self._pos}, "
                f"{max(0, self.size - self._pos)} remain",
                offset=self._pos,
            )
        data = self.read(count)
        if data is None or len(data) != count:
            raise InvalidFileError(f"{self.key}: truncated while reading {what}", offset=self._pos)
        return data

    def remaining(self) -> int:
        return max(0, self.size - self._pos)

    def _block(self, index: int) -> bytes:
        try:
            return self._fetch(index)
        except PipelineError as e:
            self.failure = e
            raise

    def _fetch(self, index: int) -> bytes:
        block = self._blocks.get(index)
        if block is not None:
            self._blocks.move_to_end(index)
            return block
        start = index * self.block_size
        end = min(start + self.block_size, self.size) - 1
        self._deadline.check(f"reading {self.key}")
        params: dict[str, Any] = {"Bucket": self._bucket, "Key": self.key, "Range": f"bytes={start}-{end}"}
        if self.etag:
            params["IfMatch"] = f'"{self.etag}"'
        try:
            with mapped_errors("GetObject"):
                reply = self._s3.get_object(**params)
                data: bytes = reply["Body"].read()
        except PipelineError as e:
            if e.details.get("httpStatus") == 412 or e.details.get("code") == "PreconditionFailed":
                raise SourceChangedError(
                    f"{self.key} changed after it was listed (ETag {self.etag!r} no longer matches)",
                    key=self.key,
                    listedEtag=self.etag,
                ) from e
            raise
        self.requests += 1
        self.bytes_fetched += len(data)
        match = _CONTENT_RANGE_RE.fullmatch(str(reply.get("ContentRange", "")))
        total = int(match.group(3)) if match else None
        if (total is not None and total != self.size) or len(data) != end - start + 1:
            raise SourceChangedError(
                f"{self.key}: object is {total if total is not None else 'of another size'} bytes, "
                f"{self.size} were listed",
                key=self.key,
                listedSize=self.size,
                actualSize=total,
            )
        self._blocks[index] = data
        while len(self._blocks) > self.max_blocks:
            self._blocks.popitem(last=False)
        return data
