"""Decode an mp3 straight to mono float32 with libmpg123 (via ctypes).

Why not ``soundfile``: libsndfile decodes mp3s with this same library, but
always to every channel; we then average the channels ourselves. libmpg123
can instead mix the channels *before* its IMDCT and synthesis filterbank
(``MPG123_MONO_MIX``: the mix is linear, so the samples are the same), which
halves that part of decoding and never materialises the stereo array. On a
3-minute 128 kbps stereo track that is 135 ms instead of 160 ms, and the
decoded samples go straight into one preallocated array.

``decode(..., half_rate_from=...)`` also uses its 2:1 synthesis
(``MPG123_DOWN_SAMPLE``) for high-rate streams: only the lower 16 subbands
are synthesised, at half the rate (the band the mel filterbank needs).

The library is the system's ``libmpg123.so.0`` (Debian ``libmpg123-0``, which
libsndfile itself depends on); ``available()`` says whether it loaded, and
callers fall back to soundfile when it did not. Only the handful of calls we
need are bound; each decode uses its own handle, so threads may decode in
parallel (ctypes releases the GIL around every call).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import numpy as np

# mpg123.h constants (stable across 1.2x-1.3x).
_OK, _NEW_FORMAT, _DONE = 0, -11, -12
_ADD_FLAGS, _DOWN_SAMPLE = 2, 4
_MONO_MIX, _QUIET, _FORCE_FLOAT = 0x4, 0x20, 0x400
_MONO = 1
_ENC_FLOAT_32 = 0x200
#: Decode this many bytes per ``mpg123_read`` call straight into the output.
_CHUNK_BYTES = 1 << 20
#: Most samples a header's claimed length may preallocate.
_MAX_PREALLOCATED = 1 << 26


class Mpg123Error(ValueError):
    """libmpg123 could not decode a file; the message is the library's reason."""


class TooLong(Mpg123Error):
    """The stream holds more than ``max_seconds`` of audio; decoding stopped there."""


_lock = threading.Lock()
_lib: ctypes.CDLL | None = None
_load_error: str | None = None


def _bind(lib: ctypes.CDLL) -> None:
    c = ctypes
    handle = c.c_void_p
    lib.mpg123_init.restype = c.c_int
    lib.mpg123_new.restype = handle
    lib.mpg123_new.argtypes = [c.c_char_p, c.POINTER(c.c_int)]
    lib.mpg123_delete.argtypes = [handle]
    lib.mpg123_param.argtypes = [handle, c.c_int, c.c_long, c.c_double]
    lib.mpg123_open.argtypes = [handle, c.c_char_p]
    lib.mpg123_close.argtypes = [handle]
    lib.mpg123_getformat.argtypes = [handle, c.POINTER(c.c_long), c.POINTER(c.c_int), c.POINTER(c.c_int)]
    lib.mpg123_format_none.argtypes = [handle]
    lib.mpg123_format.argtypes = [handle, c.c_long, c.c_int, c.c_int]
    lib.mpg123_length.restype = c.c_long  # off_t on LP64
    lib.mpg123_length.argtypes = [handle]
    lib.mpg123_read.argtypes = [handle, c.c_void_p, c.c_size_t, c.POINTER(c.c_size_t)]
    lib.mpg123_strerror.restype = c.c_char_p
    lib.mpg123_strerror.argtypes = [handle]
    lib.mpg123_plain_strerror.restype = c.c_char_p
    lib.mpg123_plain_strerror.argtypes = [c.c_int]


def _library() -> ctypes.CDLL | None:
    global _lib, _load_error
    with _lock:
        if _lib is None and _load_error is None:
            name = ctypes.util.find_library("mpg123") or "libmpg123.so.0"
            try:
                lib = ctypes.CDLL(name)
                _bind(lib)
                lib.mpg123_init()  # required before 1.27, a no-op since
                _lib = lib
            except (OSError, AttributeError) as err:
                _load_error = f"libmpg123 not usable ({err})"
        return _lib


def available() -> bool:
    return _library() is not None


def unavailable_reason() -> str | None:
    _library()
    return _load_error


def decode_mono(path: str | Path, *, max_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """All of ``path`` as mono float32 (the mean of its channels, gapless:
    encoder delay and padding removed, as libsndfile does) and its rate.

    ``max_seconds`` (default: no limit) stops decoding as soon as the stream
    proves longer than that and raises ``TooLong``: the output never holds
    more than ``max_seconds`` of audio plus one sample, whatever the header
    claims (a Xing/Info header may understate the length by hours)."""
    decoded = decode(path, max_seconds=max_seconds)
    return decoded.samples, decoded.rate


class StreamInfo(NamedTuple):
    rate: int
    channels: int
    frames: int  # per channel, gapless; exact with a Xing/Info header, else an estimate from the bitrate


@contextmanager
def _opened(path: str | Path, flags: int, *, down_sample: int = 0) -> Iterator[tuple[ctypes.CDLL, int, int, int]]:
    """A libmpg123 handle on ``path`` with ``flags`` (``MPG123_ADD_FLAGS``),
    its first frame read: yields (library, handle, rate, channels); closes
    and frees it on exit. ``down_sample`` must be set before opening
    (libmpg123 ignores it afterwards)."""
    lib = _library()
    if lib is None:
        raise RuntimeError(_load_error or "libmpg123 not loaded")
    err = ctypes.c_int(0)
    h = lib.mpg123_new(None, ctypes.byref(err))
    if not h:
        raise RuntimeError(f"mpg123_new failed: {lib.mpg123_plain_strerror(err.value).decode()}")
    try:
        lib.mpg123_param(h, _ADD_FLAGS, flags, 0.0)
        if down_sample:
            lib.mpg123_param(h, _DOWN_SAMPLE, down_sample, 0.0)
        if lib.mpg123_open(h, os.fsencode(path)) != _OK:
            raise Mpg123Error(lib.mpg123_strerror(h).decode())
        try:
            rate, channels, encoding = ctypes.c_long(), ctypes.c_int(), ctypes.c_int()
            if lib.mpg123_getformat(h, ctypes.byref(rate), ctypes.byref(channels), ctypes.byref(encoding)) != _OK:
                raise Mpg123Error(f"no MPEG audio frame found ({lib.mpg123_strerror(h).decode()})")
            yield lib, h, int(rate.value), int(channels.value)
        finally:
            lib.mpg123_close(h)
    finally:
        lib.mpg123_delete(h)


def probe(path: str | Path) -> StreamInfo:
    """The stream's rate, channels and length from its first frame and
    header, without decoding. Quiet: libsndfile's probe of the same file goes
    through libmpg123 without ``MPG123_QUIET``, and a broken file makes it
    print "Note: Illegal Audio-MPEG-Header ..." on the terminal."""
    with _opened(path, _QUIET) as (lib, h, rate, channels):
        frames = int(lib.mpg123_length(h))
        if frames <= 0:
            raise Mpg123Error("no length: neither a header nor a bitrate to estimate it from")
        return StreamInfo(rate, channels, frames)


class Decoded(NamedTuple):
    samples: np.ndarray  # mono float32
    rate: int  # of ``samples``
    source_rate: int  # of the stream (twice ``rate`` when decoded at half rate)


def decode(path: str | Path, *, max_seconds: float | None = None, half_rate_from: int | None = None) -> Decoded:
    """``decode_mono``, optionally at half the stream's rate: when the stream's
    rate is at least ``half_rate_from`` (default: never), libmpg123 runs its
    2:1 synthesis (``MPG123_DOWN_SAMPLE``): it synthesises only the lower 16
    of the 32 subbands, so the output is the band below a quarter of the
    stream's rate (0-11 kHz of a 44.1 kHz stream), at half the rate, with no
    resampling filter of ours."""
    decoded = _decode(path, max_seconds, down_sample=0, half_rate_from=half_rate_from)
    if decoded is None:  # the stream's rate asks for half rate: reopen with the 2:1 synthesis
        decoded = _decode(path, max_seconds, down_sample=1, half_rate_from=None)
    assert decoded is not None
    return decoded


def _decode(
    path: str | Path, max_seconds: float | None, *, down_sample: int, half_rate_from: int | None
) -> Decoded | None:
    """None when the stream's rate is at least ``half_rate_from`` (known from
    its first frame, before decoding; ``down_sample`` must be set before
    opening, so the caller reopens the file with it)."""
    with _opened(path, _MONO_MIX | _QUIET | _FORCE_FLOAT, down_sample=down_sample) as (lib, h, rate, _):
        if half_rate_from is not None and rate >= half_rate_from:
            return None
        lib.mpg123_format_none(h)
        lib.mpg123_format(h, rate, _MONO, _ENC_FLOAT_32)
        limit = None if max_seconds is None else int(math.floor(max_seconds * rate))
        samples = _read_all(lib, h, max(int(lib.mpg123_length(h)), 0), limit)
        if limit is not None and samples.size > limit:
            raise TooLong(f"holds more than {max_seconds:g} s of audio (decoding stopped there)")
        return Decoded(samples, rate, rate << down_sample)


def _read_all(lib: ctypes.CDLL, h: int, expected: int, limit: int | None) -> np.ndarray:
    """Decode up to ``limit + 1`` samples (all of them when ``limit`` is None)."""
    # The length is exact with a Xing/Info header and an estimate without;
    # the array grows if the estimate was short. The header is input from
    # outside, so a claimed length only sizes the first allocation up to a
    # cap (25 min at 44.1 kHz); anything longer grows as it really decodes,
    # and never past the limit: one sample more than allowed is proof enough.
    target = None if limit is None else limit + 1
    first = min(expected + 1152, _MAX_PREALLOCATED) if expected else 1 << 20
    out = np.empty(first if target is None else max(1, min(first, target)), dtype=np.float32)
    filled = 0
    done = ctypes.c_size_t(0)
    while True:
        if target is not None and filled >= target:
            break
        if out.size - filled < 4608 and (target is None or out.size < target):
            size = out.size + max(out.size, 1 << 20)
            if target is not None:
                size = min(size, target)
            out = np.concatenate([out[:filled], np.empty(size - filled, dtype=np.float32)])
        room = min(_CHUNK_BYTES, (out.size - filled) * 4)
        code = lib.mpg123_read(h, out.ctypes.data + filled * 4, room, ctypes.byref(done))
        filled += done.value // 4
        if code == _DONE:
            break
        if code == _NEW_FORMAT:  # the first read announces the format we set; nothing to do
            continue
        if code != _OK:
            raise Mpg123Error(f"decoding failed after {filled} samples: {lib.mpg123_strerror(h).decode()}")
    if filled == 0:
        raise Mpg123Error("decoded to no samples")
    return out[:filled]
