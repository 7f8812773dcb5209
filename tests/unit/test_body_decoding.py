"""body_decoding: stacked encodings undone in bounded steps; the limit holds while streaming."""

from __future__ import annotations

import gzip
import zlib

import brotli
import pytest
from backports.zstd import compress as zstd_compress
from hypothesis import given, settings
from hypothesis import strategies as st

from service.clients.body_decoding import STEP, BodyDecoder, DecodeError, content_encodings
from service.errors import TooLarge


def _decode(data: bytes, encodings: list[str], limit: int = 10**9, chunk: int = 7) -> bytes:
    decoder = BodyDecoder(encodings, limit)
    out = []
    for i in range(0, len(data), chunk):
        out += decoder.feed(data[i : i + chunk])
    out += decoder.finish()
    return b"".join(out)


def _deflate_raw(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


ENCODERS = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "identity": lambda d: d,
    "br": brotli.compress,
    "zstd": zstd_compress,
}


@settings(max_examples=60, deadline=None, database=None)
@given(st.binary(max_size=3000), st.lists(st.sampled_from(sorted(ENCODERS)), max_size=3), st.integers(1, 500))
def test_stacked_encodings_round_trip(body, encodings, chunk):
    data = body
    for name in encodings:
        data = ENCODERS[name](data)
    assert _decode(data, encodings, chunk=chunk) == body


def test_raw_deflate_multi_member_gzip_and_unknown_codings():
    assert _decode(_deflate_raw(b"raw"), ["deflate"]) == b"raw"
    assert _decode(gzip.compress(b"one") + gzip.compress(b"two"), ["x-gzip"]) == b"onetwo"
    assert _decode(b"as is", ["compress"]) == b"as is"  # unknown to us (and to browsers)
    assert _decode(b"as is", ["foo", "identity"]) == b"as is"


def test_content_encodings_in_the_order_applied():
    headers = [("Content-Encoding", "gzip, Deflate"), ("X", "y"), ("content-encoding", " br ,")]
    assert content_encodings(headers) == ["gzip", "deflate", "br"]


def test_bad_data_is_a_decode_error():
    with pytest.raises(DecodeError):
        _decode(b"not gzip at all", ["gzip"])


def test_a_stacked_bomb_stops_at_the_limit_in_bounded_steps():
    inner = zlib.compressobj(9, zlib.DEFLATED, 31)
    once = b"".join(inner.compress(bytes(1 << 20)) for _ in range(200)) + inner.flush()
    bomb = gzip.compress(once)  # 200 MiB of zeros, gzipped twice: a few hundred bytes
    assert len(bomb) < 4096
    decoder = BodyDecoder(["gzip", "gzip"], 1 << 20)
    with pytest.raises(TooLarge):
        decoder.feed(bomb)
    assert decoder.size <= (1 << 20) + STEP


@pytest.mark.parametrize("name", ["br", "zstd"])
def test_br_and_zstd_bombs_stop_at_the_limit(name):
    bomb = ENCODERS[name](bytes(64 * 1024 * 1024))
    decoder = BodyDecoder([name], 1024 * 1024)
    with pytest.raises(TooLarge):
        decoder.feed(bomb)
    assert decoder.size <= 1024 * 1024 + 2 * STEP


@pytest.mark.parametrize("name", ["br", "zstd"])
def test_br_and_zstd_that_do_not_decode_or_end_early(name):
    with pytest.raises(DecodeError):
        _decode(b"not compressed at all", [name])
    with pytest.raises(DecodeError):
        _decode(ENCODERS[name](b"hello" * 500)[:-4], [name])
    assert _decode(b"", [name]) == b""


def test_zstd_frames_back_to_back():
    assert _decode(zstd_compress(b"one") + zstd_compress(b"two"), ["zstd"], chunk=3) == b"onetwo"
