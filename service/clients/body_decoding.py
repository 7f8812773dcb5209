"""Content-Encoding undone while streaming, with the decoded size bounded at every step.

httpx decodes a whole received chunk at once: 495 bytes of ``gzip, gzip`` become 200 MB before
any limit can look at them. ``BodyDecoder(content_encodings, limit)`` instead inflates at most
``STEP`` bytes at a time through every stage, and raises ``TooLarge`` as soon as the decoded
body passes ``limit``, so memory stays within ``limit`` plus a few steps whatever the ratio.

- Encodings are undone last-applied first (``Content-Encoding: gzip, deflate``: deflate first).
- ``gzip`` / ``x-gzip`` (several members allowed), ``deflate`` (zlib-wrapped, or raw as some
  servers send it), ``br`` (brotli), ``zstd`` (several frames allowed), ``identity``: what
  browsers decode. An unknown name is left as it is: the body is then reported as received.
- Data a stage cannot decode raises ``DecodeError`` (a 502 for the caller).
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Iterator

import brotli
from backports.zstd import ZstdDecompressor, ZstdError

from service.errors import TooLarge

STEP = 64 * 1024


class DecodeError(ValueError):
    """The body is not valid data for its Content-Encoding."""


def content_encodings(headers: Iterable[tuple[str, str]]) -> list[str]:
    """Every coding of every Content-Encoding header, in the order they were applied."""
    found = []
    for name, value in headers:
        if name.lower() == "content-encoding":
            found += [part.strip().lower() for part in value.split(",") if part.strip()]
    return found


class _Inflate:
    """One zlib stage, bounded: each call yields pieces of at most STEP bytes."""

    def __init__(self, name: str):
        self.name = name
        self._wbits = 16 + zlib.MAX_WBITS if name in ("gzip", "x-gzip") else zlib.MAX_WBITS
        self._inflater = zlib.decompressobj(self._wbits)
        self._started = False
        self._ended = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        while data or not self._ended:
            if self._ended:  # data after the end: another gzip member, or trailing junk
                if self.name == "deflate" or not data.strip(b"\x00"):
                    return
                self._inflater = zlib.decompressobj(self._wbits)
                self._ended = False
            try:
                out = self._inflater.decompress(data, STEP)
            except zlib.error as exc:
                if self.name == "deflate" and not self._started:  # raw deflate, no zlib header
                    self._wbits = -zlib.MAX_WBITS
                    self._inflater = zlib.decompressobj(self._wbits)
                    self._started = True
                    continue
                raise DecodeError(f"invalid {self.name} data: {exc}") from exc
            self._started = True
            if out:
                yield out
            if self._inflater.eof:
                self._ended = True
                data = self._inflater.unused_data
                continue
            data = self._inflater.unconsumed_tail
            if not data and len(out) < STEP:
                return

    def finish(self) -> Iterator[bytes]:
        yield from self.feed(b"")


class _Bounded:
    """One ``br`` or ``zstd`` stage, bounded like ``_Inflate``: the decoder hands out at most
    STEP bytes per call and is drained before it takes more input."""

    def __init__(self, name: str):
        self.name = name
        if name == "br":
            self._brotli = brotli.Decompressor()
        else:
            self._zstd = ZstdDecompressor()
        self._done = False  # br: the stream ended
        self._open = False  # data came (br); a frame started and has not ended (zstd)

    def feed(self, data: bytes) -> Iterator[bytes]:
        try:
            if self.name == "br":
                yield from self._feed_brotli(data)
            else:
                yield from self._feed_zstd(data)
        except (brotli.error, ZstdError) as exc:
            raise DecodeError(f"invalid {self.name} data: {exc}") from exc

    def _feed_brotli(self, data: bytes) -> Iterator[bytes]:
        decoder = self._brotli
        self._open = self._open or bool(data)
        if self._done:
            if data.strip(b"\x00"):
                raise DecodeError("invalid br data: bytes after the end of the stream")
            return
        out = decoder.process(data, output_buffer_limit=STEP)
        while True:
            if out:
                yield out
            if decoder.is_finished() or decoder.can_accept_more_data():
                break
            out = decoder.process(b"", output_buffer_limit=STEP)
        self._done = decoder.is_finished()

    def _feed_zstd(self, data: bytes) -> Iterator[bytes]:
        self._open = self._open or bool(data)
        while True:
            decoder = self._zstd
            out = decoder.decompress(data, STEP)
            data = b""
            if out:
                yield out
            if decoder.eof:  # a next frame may follow (RFC 8878: concatenated frames)
                data, self._zstd, self._open = decoder.unused_data, ZstdDecompressor(), False
                if not data.strip(b"\x00"):
                    return
                self._open = True
            elif decoder.needs_input:
                return

    def finish(self) -> Iterator[bytes]:
        if self.name == "br" and self._open and not self._brotli.is_finished():
            raise DecodeError("invalid br data: the stream ends early")
        if self.name == "zstd" and self._open:
            raise DecodeError("invalid zstd data: the stream ends early")
        return
        yield


class BodyDecoder:
    def __init__(self, encodings: Iterable[str], limit: int):
        self.limit = limit
        self.size = 0
        self.stages = [
            _Inflate(name) if name in _ZLIB_NAMES else _Bounded(name)
            for name in reversed(list(encodings))
            if name in _ZLIB_NAMES or name in _OTHER_NAMES
        ]

    def feed(self, raw: bytes) -> list[bytes]:
        """The decoded pieces of ``raw``; ``TooLarge`` as soon as the total passes the limit."""
        return self._run(raw, final=False)

    def finish(self) -> list[bytes]:
        return self._run(b"", final=True)

    def _run(self, raw: bytes, final: bool) -> list[bytes]:
        out: list[bytes] = []
        for piece in self._through(0, raw, final):
            self.size += len(piece)
            if self.size > self.limit:
                raise TooLarge(f"the decoded response body is over the {self.limit}-byte limit")
            out.append(piece)
        return out

    def _through(self, index: int, data: bytes, final: bool) -> Iterator[bytes]:
        if index == len(self.stages):
            if data:
                yield data
            return
        stage = self.stages[index]
        pieces = stage.feed(data) if data else iter(())
        for piece in pieces:
            yield from self._through(index + 1, piece, False)
        if final:
            for piece in stage.finish():
                yield from self._through(index + 1, piece, False)
            yield from self._through(index + 1, b"", True)


_ZLIB_NAMES = {"gzip", "x-gzip", "deflate"}
_OTHER_NAMES = {"br", "zstd"}
