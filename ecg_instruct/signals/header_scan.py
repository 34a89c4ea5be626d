"""A compiled scanner for the one WFDB header layout that PTB-XL and MIMIC-IV-ECG use.

Why: parsing a 12-lead header in Python (``wfdb_io._parse_plain``: one ``split`` per line,
``zip``, ``int`` per field) costs ~33 µs, the largest Python cost per record in the signal
stage. This scanner walks the bytes once (~1.5 µs) and hands back the numbers and the few
strings a header needs; ``wfdb_io._parse_scanned`` builds the header from them, ~9 µs in all.

It never decides anything on its own: it accepts only a strict subset of what the Python
parser accepts, and answers -1 ("not the strict layout") for everything else, so that the Python
parsers keep giving every other result and every error message. Accepted is exactly this:

* printable ASCII (32..126) and ``\\n`` only, no ``#``; one trailing ``\\n`` is dropped and no
  line may be empty;
* a record line ``name n_sig fs n_samples [more tokens]`` with single spaces: the name of
  ``[A-Za-z0-9_-]`` (no ``/segments``), ``n_sig`` (1..:data:`MAX_SIGNALS`) and ``n_samples``
  of at most 9 digits, ``fs`` of digits with at most one ``.`` (its value is the caller's:
  ``float`` of the span), further tokens (MIMIC-IV-ECG's time and date) ignored;
* exactly ``n_sig`` signal lines of nine single-space-separated tokens, whose file name (token
  1) and format/gain/resolution/zero (tokens 2-5) are byte-identical on every line, so that
  the caller validates them once; initial value and checksum ``-?[0-9]{1,18}``, block size
  ``[0-9]{1,18}``, any lead name.

Results go into two preallocated arrays, kept from one call to the next (allocating them per
call would cost about as much as the scan): the numbers as int64 (layout: the ``OUT_*``
constants), and the strings the header needs (record name, fs, file name, format tokens, lead
names) copied one after another with a newline between them, so that Python gets all of them
with one ``decode`` and one ``split`` instead of a slice per lead (a third of the time left).
"""

from __future__ import annotations

import threading

import numpy as np
from numba import njit

#: Most signal lines the scanner takes (a larger header goes to the Python parser).
MAX_SIGNALS = 64
#: Longest header the scanner takes, in bytes (the size of its text output buffer).
MAX_BYTES = 16384
#: Positions in the int output array: signal count, sample count, the length of the text
#: output, then ``n_sig`` initial values and ``n_sig`` checksums: ``OUT_HEAD + 2 * n_sig`` values.
OUT_N_SIG, OUT_N_SAMPLES, OUT_TEXT_LEN = 0, 1, 2
OUT_HEAD = 3
OUT_SIZE = OUT_HEAD + 2 * MAX_SIGNALS
#: The text output, split at its newlines, is: record name, fs token, file name, the format,
#: gain, ADC resolution and zero tokens as one string (with their single spaces), then the
#: ``n_sig`` lead names.
TEXT_NAME, TEXT_FS, TEXT_FILE, TEXT_SPEC, TEXT_LEADS = 0, 1, 2, 3, 4

_SPACE, _NEWLINE, _DASH, _DOT = 32, 10, 45, 46
_ZERO, _NINE = 48, 57


@njit(cache=True, nogil=True)
def _token_end(buf, p: int, n: int) -> int:
    """The end of the token starting at ``p`` (the next space, newline or the end)."""
    while p < n and buf[p] != _SPACE and buf[p] != _NEWLINE:
        p += 1
    return p


@njit(cache=True, nogil=True)
def _number(buf, p: int, n: int, signed: bool, max_digits: int) -> tuple[int, int]:
    """The integer at ``p`` (a ``-`` first if ``signed``, then 1..``max_digits`` digits, so
    that it fits an int64 and equals Python's ``int`` of it) and where it ends; the end is -1
    when there is none. The caller checks what follows it."""
    negative = signed and p < n and buf[p] == _DASH
    if negative:
        p += 1
    start = p
    value = 0
    while p < n and p - start <= max_digits:
        c = buf[p]
        if c < _ZERO or c > _NINE:
            break
        value = value * 10 + (c - _ZERO)
        p += 1
    if p == start or p - start > max_digits:
        return 0, -1
    return (-value if negative else value), p


@njit(cache=True, nogil=True)
def _same(buf, a: int, b: int, length: int) -> bool:
    """Whether ``buf[a:a + length] == buf[b:b + length]``."""
    for i in range(length):
        if buf[a + i] != buf[b + i]:
            return False
    return True


@njit(cache=True, nogil=True)
def _put(buf, p: int, e: int, text, q: int) -> int:
    """Append ``buf[p:e]`` and a newline to ``text`` at ``q``; the new end."""
    for i in range(p, e):
        text[q] = buf[i]
        q += 1
    text[q] = _NEWLINE
    return q + 1


@njit(cache=True, nogil=True)
def scan_plain(buf, out, text) -> int:
    """Scan header bytes ``buf`` (``bytes``) of the strict layout (see the module docstring)
    into ``out`` (int64, :data:`OUT_SIZE`) and ``text`` (a bytearray); the number
    of signals, or -1 when the header is anything else (then the outputs hold garbage and the
    Python parsers decide)."""
    n = len(buf)
    if n > 0 and buf[n - 1] == _NEWLINE:
        n -= 1  # one trailing newline; a second one leaves an empty line, refused below
    if n == 0 or n >= len(text):  # the text output takes at most n + 1 bytes
        return -1
    bad = np.uint8(0)
    for i in range(n):  # no branch in the loop: it vectorises
        c = np.uint8(buf[i] - np.uint8(_SPACE))  # bytes below 32 wrap round to large values
        bad |= ((c > np.uint8(94)) & (c != np.uint8(_NEWLINE - _SPACE + 256))) | (c == np.uint8(3))
    if bad:
        return -1  # a control character, non-ASCII or "#" (35 - 32 = 3)

    # record line: name n_sig fs n_samples [time [date ...]]
    p = 0
    while p < n and buf[p] != _SPACE and buf[p] != _NEWLINE:
        c = buf[p]
        if not ((48 <= c <= 57) or (65 <= c <= 90) or (97 <= c <= 122) or c == 95 or c == _DASH):
            return -1  # also "/": a multi-segment record
        p += 1
    if p == 0 or p == n or buf[p] != _SPACE:
        return -1
    q = _put(buf, 0, p, text, 0)
    n_sig, e = _number(buf, p + 1, n, False, 9)
    if e < 0 or n_sig < 1 or n_sig > MAX_SIGNALS or e == n or buf[e] != _SPACE:
        return -1
    p = e + 1
    e = _token_end(buf, p, n)
    digits = 0
    dots = 0
    for i in range(p, e):
        c = buf[i]
        if c == _DOT:
            dots += 1
        elif _ZERO <= c <= _NINE:
            digits += 1
        else:
            return -1
    if digits == 0 or dots > 1 or e == n or buf[e] != _SPACE:
        return -1
    q = _put(buf, p, e, text, q)
    n_samples, p = _number(buf, e + 1, n, False, 9)
    if p < 0 or (p < n and buf[p] != _SPACE and buf[p] != _NEWLINE):
        return -1
    while p < n and buf[p] == _SPACE:  # further tokens, one space before each
        e = _token_end(buf, p + 1, n)
        if e == p + 1:
            return -1  # a double or trailing space
        p = e
    if p == n:
        return -1  # no signal lines
    p += 1  # the newline

    # signal lines: file format gain adc_res adc_zero init checksum block name; tokens 1-5
    # must be the same on every line: after the first, one comparison of bytes checks them
    first = p
    prefix_len = 0
    spec_start = 0
    for s in range(n_sig):
        if p >= n:
            return -1  # fewer signal lines than declared
        if s == 0:
            for k in range(5):  # file name, format, gain, ADC resolution, ADC zero
                e = _token_end(buf, p, n)
                if e == p or e == n or buf[e] != _SPACE:
                    return -1
                if k == 0:
                    q = _put(buf, p, e, text, q)
                    spec_start = e + 1
                p = e + 1
            q = _put(buf, spec_start, p - 1, text, q)  # tokens 2-5 with their spaces
            prefix_len = p - first
        elif p + prefix_len > n or not _same(buf, p, first, prefix_len):
            return -1
        else:
            p += prefix_len
        for k in range(3):  # initial value, checksum (signed), block size (not signed)
            value, e = _number(buf, p, n, k < 2, 18)
            if e < 0 or e == n or buf[e] != _SPACE:
                return -1
            if k < 2:
                out[OUT_HEAD + k * n_sig + s] = value
            p = e + 1
        e = _token_end(buf, p, n)
        if e == p:
            return -1
        q = _put(buf, p, e, text, q)
        if s < n_sig - 1:
            if e == n or buf[e] != _NEWLINE:
                return -1  # a tenth token, a trailing space, or too few lines
            p = e + 1
        elif e != n:
            return -1  # a tenth token, a trailing space, or more lines than declared
    out[OUT_N_SIG] = n_sig
    out[OUT_N_SAMPLES] = n_samples
    out[OUT_TEXT_LEN] = q - 1  # without the last newline
    return n_sig


class _Scratch(threading.local):
    """Output arrays per thread: the scanner releases the GIL, and a shared array could be
    overwritten by another thread between the scan and the read of its results."""

    def __init__(self) -> None:
        self.out = np.empty(OUT_SIZE, dtype=np.int64)
        self.text = bytearray(MAX_BYTES)  # decodes without a copy to bytes first


_SCRATCH = _Scratch()


def scan(data: bytes) -> tuple[list[int], list[str]] | None:
    """:func:`scan_plain` of ``data``: the first ``OUT_HEAD + 2 * n_sig`` int outputs (layout:
    the ``OUT_*`` constants) and the strings of the text output (``TEXT_*``), or
    ``None`` when the header is not of the strict layout. ``data`` must be ``bytes``: the
    compiled signature is for that type (see :func:`warm_up`)."""
    scratch = _SCRATCH
    out = scratch.out
    n_sig = scan_plain(data, out, scratch.text)
    if n_sig < 0:
        return None
    ints = out[:OUT_HEAD + 2 * n_sig].tolist()
    return ints, scratch.text[:ints[OUT_TEXT_LEN]].decode("ascii").split("\n")


def warm_up() -> None:
    """Compile (or load from numba's disk cache) :func:`scan_plain` for the argument types
    :func:`scan` passes at run time (``bytes``, a writable int64 array, a ``bytearray``; it
    goes through :func:`scan` itself so that they cannot differ), so that no worker compiles
    it on its first record: ~3 s to compile, well under 0.1 s from the cache."""
    header = (b"r1 2 500 5000 13:09:00 05/27/2180\n"
              b"r1.dat 16 200.0(0)/mV 16 0 -1 -7 0 I\n"
              b"r1.dat 16 200.0(0)/mV 16 0 3 12 0 II\n")
    if scan(header) is None:
        raise RuntimeError("header_scan.warm_up: the scanner refused its own sample header")
