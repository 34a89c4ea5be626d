"""WFDB header parsing and a fast reader for the common case (one format-16 ``.dat`` per record).

Why not just ``wfdb.rdsamp``: about 80 % of its 1.7 ms per 12 x 5000 record goes into parsing
the header through pandas-backed field specs. PTB-XL and MIMIC-IV-ECG are plain format 16 in one
file, so a small parser plus ``np.fromfile`` reads them ~10x faster with bit-identical values
(their headers through a compiled scanner, ``header_scan``, with the results of the Python
parsers, which take every other layout). Everything else (other formats, multi-file or
multi-segment records, skew, several samples per frame) goes through ``wfdb`` so that rare
layouts stay correct rather than fast.

Problems with one record raise :class:`~ecg_instruct.errors.RecordReject` with one of the
reasons ``missing_file``, ``bad_header``, ``truncated_dat``, ``header_mismatch``,
``checksum_mismatch``, ``unsupported_units`` or ``unsupported_format``; they become rows of the
rejects table.
"""

from __future__ import annotations

import math
import os
import re
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from ecg_instruct.errors import RecordReject
from ecg_instruct.paths import sibling
from ecg_instruct.signals.header_scan import (
    OUT_HEAD,
    OUT_N_SAMPLES,
    OUT_N_SIG,
    TEXT_FILE,
    TEXT_FS,
    TEXT_LEADS,
    TEXT_NAME,
    TEXT_SPEC,
    scan,
)

#: The digital value WFDB writes for a missing sample in format 16.
INVALID_SAMPLE_16 = -32768
#: WFDB's default gain (ADC units per physical unit) when a header gives none or 0.
DEFAULT_GAIN = 200.0
#: WFDB's default sampling frequency when the record line gives none.
DEFAULT_FS = 250.0
_INT32_MIN, _INT32_MAX = -(2**31), 2**31 - 1

# physical unit -> factor that converts it to millivolts
_UNIT_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3}

_FMT_RE = re.compile(r"^(\d+)(?:x(\d+))?(?::(\d+))?(?:\+(\d+))?$")
_GAIN_RE = re.compile(r"^([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?:\((-?\d+)\))?(?:/(\S*))?$")
_NAME_RE = re.compile(r"^[-\w]+$")
_FILE_RE = re.compile(r"^~?[-\w]*\.?\w*$")
#: ASCII characters other than space and newline at which ``str.split()``/``splitlines()``
#: break: headers with any (or with non-ASCII text) take the general parser.
_SPLITTING_CONTROLS = "\t\r\x0b\x0c\x1c\x1d\x1e\x1f"


@dataclass(frozen=True)
class WfdbHeader:
    """The fields of a single-segment WFDB header that curation needs (one entry per signal).

    ``checksums`` and ``init_values`` are ``None`` per signal when the header omits them.
    ``n_samples`` is 0 when the record line gives no length (then the ``.dat`` size decides).
    """

    record_name: str
    n_sig: int
    fs: float
    n_samples: int
    sig_names: list[str]
    fmt: list[str]
    adc_gain: np.ndarray
    baseline: np.ndarray
    units: list[str]
    file_names: list[str]
    byte_offsets: list[int]
    samps_per_frame: list[int] = field(default_factory=list)
    skews: list[int] = field(default_factory=list)
    adc_res: list[int] = field(default_factory=list)
    adc_zero: list[int] = field(default_factory=list)
    init_values: list[int | None] = field(default_factory=list)
    checksums: list[int | None] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    n_seg: int | None = None
    #: :attr:`fast_path_ok` when the parser already knows it (None: work it out)
    fast_path: bool | None = field(default=None, repr=False, compare=False)

    @property
    def fast_path_ok(self) -> bool:
        """True when the numpy reader handles this record: one format-16 file, plain frames."""
        if self.fast_path is not None:
            return self.fast_path
        return (
            self.n_seg is None
            and self.n_sig > 0
            and all(f == "16" for f in self.fmt)
            and len(set(self.file_names)) == 1
            and not self.file_names[0].startswith("~")
            and len(set(self.byte_offsets)) == 1
            and all(s == 1 for s in self.samps_per_frame)
            and all(s == 0 for s in self.skews)
        )


@dataclass
class EcgRecord:
    """One record in physical units.

    ``signal`` is float64 ``(n_sig, n_samples)`` in millivolts with NaN where the source stored
    the invalid-sample sentinel. ``digital`` holds the int16 ADC counts ``(n_sig, n_samples)``
    when the fast reader was used (``None`` after the wfdb fallback); quality checks and the
    int16 storage option can use it without re-deriving counts from floats.
    ``adc_gain`` is in counts per millivolt, so ``1 / adc_gain`` is the source's ADC step in mV.
    """

    signal: np.ndarray
    fs: float
    sig_names: list[str]
    adc_gain: np.ndarray
    baseline: np.ndarray
    digital: np.ndarray | None = None
    record_name: str = ""
    units: list[str] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)


#: Sampling rates a real ECG header can have (Holter 25 Hz .. high-resolution 100 kHz).
PLAUSIBLE_FS = (25.0, 100_000.0)


def _bad(source: str, what: str) -> RecordReject:
    return RecordReject("bad_header", f"{source}: {what}")


def _int(token: str, source: str, what: str) -> int:
    try:
        return int(token)
    except ValueError:
        raise _bad(source, f"{what} is not an integer: {token!r}") from None


def _parse_record_line(line: str, source: str) -> tuple[str, int | None, int, float, int]:
    """``name[/n_seg] n_sig [fs[/counter[(base)]] [n_samples [time [date]]]]``."""
    tokens = line.split()
    if len(tokens) < 2:
        raise _bad(source, f"record line needs a name and a signal count: {line!r}")
    name, _, seg = tokens[0].partition("/")
    if not _NAME_RE.match(name):
        raise _bad(source, f"invalid record name {name!r}")
    n_seg = _int(seg, source, "segment count") if seg else None
    n_sig = _int(tokens[1], source, "signal count")
    fs = DEFAULT_FS
    if len(tokens) > 2:
        fs_token = tokens[2].split("/", 1)[0]
        try:
            fs = float(fs_token)
        except ValueError:
            raise _bad(source, f"sampling frequency is not a number: {tokens[2]!r}") from None
        if not np.isfinite(fs) or fs <= 0:
            raise _bad(source, f"sampling frequency must be positive: {tokens[2]!r}")
    n_samples = _int(tokens[3], source, "sample count") if len(tokens) > 3 else 0
    if n_sig < 0 or n_samples < 0:
        raise _bad(source, f"negative count in record line: {line!r}")
    return name, n_seg, n_sig, fs, n_samples


def parse_header(text: str, source: str = "<header>") -> WfdbHeader:
    """Parse the text of a ``.hea`` file.

    Follows the WFDB header spec and wfdb-python's defaults: gain absent or 0 means 200,
    baseline absent means ADC zero, units absent means mV, fs absent means 250 Hz. Raises
    ``RecordReject("bad_header", ...)`` naming ``source`` for anything unparseable, so one
    corrupt header never stops a build.

    The compiled scanner takes the PTB-XL/MIMIC-IV-ECG layout (:func:`_parse_scanned`); all
    else, rejects included, goes to the Python parsers, which give the same results.
    """
    if text.isascii():
        header = _parse_scanned(text.encode("ascii"), source)
        if header is not None:
            return header
    return _parse_text(text, source)


def _parse_text(text: str, source: str) -> WfdbHeader:
    """The Python parsers: :func:`_parse_plain`, else :func:`_parse_general`."""
    plain = _parse_plain(text, source)
    return plain if plain is not None else _parse_general(text, source)


def _parse_scanned(data: bytes, source: str) -> WfdbHeader | None:
    """What :func:`_parse_plain` returns for the header bytes ``data`` when the compiled
    scanner (:mod:`.header_scan`) takes its layout, which every PTB-XL and MIMIC-IV-ECG header
    has; ``None`` for anything else, including anything invalid, so that the Python parsers
    give the result or the message exactly as they did before the scanner existed.

    Why: the scanner leaves per line only the initial value, checksum and lead name, and the
    tokens that decide the format and gain, the same on every line, are looked up once per
    header: a 12-lead header in about a quarter of :func:`_parse_plain`'s time.
    """
    scanned = scan(data)
    if scanned is None:
        return None
    ints, tokens = scanned
    # the record line as _parse_record_line reads it: the scanner checked the name (no
    # segments) and the counts (digits); what is left is fs, which must be finite and positive
    fs = float(tokens[TEXT_FS])  # digits and at most one ".": always a float
    if not 0.0 < fs < math.inf:
        return None  # _parse_record_line rejects it, with its message
    file_name = tokens[TEXT_FILE]
    if not _FILE_RE.match(file_name):
        return None
    n_sig = ints[OUT_N_SIG]
    layout = _plain_layout(tokens[TEXT_SPEC], n_sig)
    if layout is None:
        return None
    fmt, spf, skew, offset, gains, baselines, unit, adc_res, adc_zero, fast = layout
    # WfdbHeader's own __init__ (frozen: one object.__setattr__ per field) would cost 3 µs,
    # as much as all the rest; its fields, in order, go straight into the instance's __dict__,
    # which is all that __init__ does (test_scanned_header_has_every_field_in_order checks it)
    header = _new_object(WfdbHeader)
    _set_attribute(header, "__dict__", {
        "record_name": tokens[TEXT_NAME], "n_sig": n_sig, "fs": fs,
        "n_samples": ints[OUT_N_SAMPLES], "sig_names": tokens[TEXT_LEADS:],
        "fmt": [fmt] * n_sig, "adc_gain": gains.copy(), "baseline": baselines.copy(),
        "units": [unit] * n_sig, "file_names": [file_name] * n_sig,
        "byte_offsets": [offset] * n_sig, "samps_per_frame": [spf] * n_sig,
        "skews": [skew] * n_sig, "adc_res": [adc_res] * n_sig, "adc_zero": [adc_zero] * n_sig,
        "init_values": ints[OUT_HEAD:OUT_HEAD + n_sig],
        "checksums": ints[OUT_HEAD + n_sig:OUT_HEAD + 2 * n_sig], "comments": [], "n_seg": None,
        "fast_path": fast and not file_name.startswith("~"),
    })
    return header


_new_object = object.__new__
_set_attribute = object.__setattr__


@lru_cache(maxsize=1024)
def _plain_layout(spec_tokens: str, n_sig: int) -> tuple | None:
    """The per-header constants of :func:`_parse_scanned` for the format, gain, resolution
    and zero tokens ``spec_tokens`` (one string, single spaces between them: a cheap key to
    hash) on all of ``n_sig`` signal lines: the fields of :func:`_signal_spec_cached`, with
    gain and baseline as ``n_sig``-arrays (the caller copies them: cheaper than building them),
    and whether they suit the fast path. ``None`` for invalid tokens (the Python parsers then
    give the message)."""
    spec = _signal_spec_cached(tuple(spec_tokens.split(" ")))
    if spec is None:
        return None
    fmt, spf, skew, offset, gain, baseline, unit, adc_res, adc_zero = spec
    gains = np.asarray([gain] * n_sig, dtype=np.float64)  # as _parse_plain builds them
    baselines = np.asarray([baseline] * n_sig, dtype=np.int64)
    fast = fmt == "16" and spf == 1 and skew == 0
    return fmt, spf, skew, offset, gains, baselines, unit, adc_res, adc_zero, fast


def _parse_plain(text: str, source: str) -> WfdbHeader | None:
    """The header as :func:`_parse_general` reads it, for the layout every PTB-XL and
    MIMIC-IV-ECG header has (no comments or blank lines, all nine fields of every signal line
    separated by single spaces); ``None`` for anything else, including anything invalid, so
    that the general parser gives the message.

    Column-wise work on one ``split`` per line is ~3x faster than the general parser's
    per-field handling, which showed up as a third of the signal stage's reading time.
    """
    if "#" in text or not text.isascii() or any(c in text for c in _SPLITTING_CONTROLS):
        return None
    lines = text.split("\n")  # no other line breaks: splits as splitlines() does
    if lines[-1] == "":
        lines.pop()
    if len(lines) < 2 or not lines[0].strip():
        return None
    name, n_seg, n_sig, fs, n_samples = _parse_record_line(lines[0].strip(), source)
    if n_seg is not None or len(lines) - 1 != n_sig:
        return None
    fields = [line.split(" ") for line in lines[1:]]
    for tokens in fields:
        if len(tokens) != 9 or "" in tokens:
            return None
    files, fmt_t, gain_t, res_t, zero_t, init_t, sum_t, block_t, names = zip(*fields, strict=True)
    for file_name in set(files):
        if not _FILE_RE.match(file_name):
            return None
    specs = [_signal_spec_cached(key) for key in zip(fmt_t, gain_t, res_t, zero_t, strict=True)]
    if None in specs:
        return None
    try:
        inits = [int(v) for v in init_t]
        sums = [int(v) for v in sum_t]
        for v in block_t:
            if not v.isdigit():  # anything unusual: the general parser decides
                int(v)
    except ValueError:
        return None
    fmts, spf, skews, offsets, gains, baselines, units, res, zeros = zip(*specs, strict=True)
    layouts = set(specs)  # usually one: every line alike but for its checksum and lead name
    fast = (len(set(files)) == 1 and not files[0].startswith("~")
            and all(sp[0] == "16" and sp[1] == 1 and sp[2] == 0 for sp in layouts)
            and len({sp[3] for sp in layouts}) == 1)
    return WfdbHeader(
        record_name=name, n_sig=n_sig, fs=fs, n_samples=n_samples, sig_names=list(names),
        fmt=list(fmts), adc_gain=np.asarray(gains, dtype=np.float64),
        baseline=np.asarray(baselines, dtype=np.int64), units=list(units),
        file_names=list(files), byte_offsets=list(offsets), samps_per_frame=list(spf),
        skews=list(skews), adc_res=list(res), adc_zero=list(zeros), init_values=inits,
        checksums=sums, comments=[], n_seg=None, fast_path=fast,
    )


def _parse_general(text: str, source: str) -> WfdbHeader:
    """Any single- or multi-segment header, field by field (see :func:`parse_header`)."""
    lines: list[str] = []
    comments: list[str] = []
    for raw in text.splitlines():
        stripped = raw.strip()
        if not stripped:
            continue
        if stripped.startswith("#"):
            comments.append(stripped[1:].strip())
            continue
        lines.append(stripped)
    if not lines:
        raise _bad(source, "no record line")
    name, n_seg, n_sig, fs, n_samples = _parse_record_line(lines[0], source)
    signal_lines = lines[1:]
    if n_seg is not None:
        # Multi-segment headers list segments, not signals; the wfdb fallback reads them.
        return WfdbHeader(name, n_sig, fs, n_samples, [], [], np.zeros(0), np.zeros(0, np.int64),
                          [], [], [], comments=comments, n_seg=n_seg)
    if len(signal_lines) != n_sig:
        raise _bad(source, f"record line declares {n_sig} signals but {len(signal_lines)} "
                           "signal lines follow")

    fmts, files, offsets, spf, skews, gains, baselines, units = [], [], [], [], [], [], [], []
    res, zeros, inits, sums, names = [], [], [], [], []
    for i, line in enumerate(signal_lines):
        tok = line.split(maxsplit=8)
        if len(tok) < 2:
            raise _bad(source, f"signal line {i + 1} needs a file name and a format: {line!r}")
        file_name = tok[0]
        if not _FILE_RE.match(file_name):
            # also keeps a hostile header from pointing outside the record's folder
            raise _bad(source, f"invalid file name {file_name!r} in signal line {i + 1}")
        spec = _signal_spec_cached(tuple(tok[1:5]))
        if spec is None:  # invalid: parse again with the record's name for the message
            spec = _signal_spec(tuple(tok[1:5]), source, i)
        fmt, n_per_frame, skew, offset, gain, baseline, unit, adc_res, adc_zero = spec
        fmts.append(fmt)
        spf.append(n_per_frame)
        skews.append(skew)
        offsets.append(offset)
        files.append(file_name)
        gains.append(gain)
        baselines.append(baseline)
        units.append(unit)
        res.append(adc_res)
        zeros.append(adc_zero)
        inits.append(_int(tok[5], source, "initial value") if len(tok) > 5 else None)
        sums.append(_int(tok[6], source, "checksum") if len(tok) > 6 else None)
        if len(tok) > 7:
            _int(tok[7], source, "block size")
        names.append(tok[8].strip() if len(tok) > 8 else f"sig{i}")

    return WfdbHeader(
        record_name=name, n_sig=n_sig, fs=fs, n_samples=n_samples, sig_names=names, fmt=fmts,
        adc_gain=np.asarray(gains, dtype=np.float64),
        baseline=np.asarray(baselines, dtype=np.int64), units=units, file_names=files,
        byte_offsets=offsets, samps_per_frame=spf, skews=skews, adc_res=res, adc_zero=zeros,
        init_values=inits, checksums=sums, comments=comments, n_seg=None,
    )


def _signal_spec(t: tuple[str, ...], source: str, i: int) -> tuple:
    """Format, gain, units, ADC resolution and zero of signal line ``i`` from its tokens 2-5:
    ``(fmt, samples per frame, skew, byte offset, gain, baseline, unit, adc_res, adc_zero)``."""
    m = _FMT_RE.match(t[0])
    if m is None:
        raise _bad(source, f"invalid format {t[0]!r} in signal line {i + 1}")
    spf = int(m.group(2)) if m.group(2) else 1
    skew = int(m.group(3)) if m.group(3) else 0
    offset = int(m.group(4)) if m.group(4) else 0
    adc_zero = _int(t[3], source, "ADC zero") if len(t) > 3 else 0
    gain, baseline, unit = DEFAULT_GAIN, adc_zero, "mV"
    if len(t) > 1:
        g = _GAIN_RE.match(t[1])
        if g is None:
            raise _bad(source, f"invalid gain {t[1]!r} in signal line {i + 1}")
        gain = float(g.group(1))
        if gain == 0:
            gain = DEFAULT_GAIN
        if not np.isfinite(gain) or gain < 0:
            raise _bad(source, f"invalid gain {t[1]!r} in signal line {i + 1}")
        if g.group(2) is not None:
            baseline = int(g.group(2))
        if g.group(3):
            unit = g.group(3)
    if not (_INT32_MIN <= baseline <= _INT32_MAX and _INT32_MIN <= adc_zero <= _INT32_MAX):
        # WFDB stores these as 32-bit ints; anything else is a corrupt header
        raise _bad(source, f"baseline/ADC zero out of range in signal line {i + 1}")
    adc_res = _int(t[2], source, "ADC resolution") if len(t) > 2 else 0
    return m.group(1), spf, skew, offset, gain, baseline, unit, adc_res, adc_zero


@lru_cache(maxsize=4096)
def _signal_spec_cached(t: tuple[str, ...]) -> tuple | None:
    """:func:`_signal_spec` memoised: within an archive the format/gain/resolution/zero tokens
    repeat on every line of every header, so a header costs one lookup per line instead of
    three regex matches (``None`` for an invalid line; the caller re-parses it for the error).
    """
    try:
        return _signal_spec(t, "", 0)
    except RecordReject:
        return None


def read_header(record_path: str | Path) -> WfdbHeader:
    """Read and parse ``<record_path>.hea``; ``missing_file`` if it does not exist."""
    hea = f"{os.fspath(record_path)}.hea"
    try:
        data = _read_bytes(hea)
    except FileNotFoundError:
        raise RecordReject("missing_file", f"{hea} does not exist") from None
    except IsADirectoryError:
        raise RecordReject("missing_file", f"{hea} is a directory") from None
    except OSError as exc:  # no permission, I/O error
        raise RecordReject("missing_file", f"{hea}: {exc.strerror or exc}") from None
    header = _parse_scanned(data, hea)  # refuses "\r": the text below normalises it
    if header is None:
        text = data.decode("latin-1")
        if "\r" in text:  # as text-mode open() would give it
            text = text.replace("\r\n", "\n").replace("\r", "\n")
            header = parse_header(text, hea)  # normalised, it may suit the scanner now
        else:
            header = _parse_text(text, hea)
    if not PLAUSIBLE_FS[0] <= header.fs <= PLAUSIBLE_FS[1]:
        # else a typo (1e12) passes as a header and surfaces as an absurd heart rate
        raise _bad(hea, f"sampling frequency {header.fs:g} Hz is not a plausible ECG rate "
                        f"({PLAUSIBLE_FS[0]:g}..{PLAUSIBLE_FS[1]:g} Hz)")
    return header


def _read_bytes(path: str) -> bytes:
    """A whole small file with ``os.open``/``os.read``: a third of what ``open()`` costs (its
    buffered text layers), which matters once per record. Non-blocking: a FIFO named like a
    header must not hang the worker (it reads empty, and is rejected as a bad header)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        chunks = [os.read(fd, 1 << 16)]
        if len(chunks[0]) < 1 << 16:  # a regular file reads short only at its end
            return chunks[0]
        while chunk := os.read(fd, 1 << 16):  # a header of 64 kB or more (comments)
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _mv_factors(header: WfdbHeader, source: str) -> np.ndarray | None:
    """Per-signal factor from the header's physical unit to mV (``unsupported_units`` else);
    ``None`` when every signal is already in mV (the common case, answered without arrays)."""
    if header.units.count("mV") == len(header.units):  # all(...) with a generator: 3x slower
        return None
    factors = []
    for name, unit in zip(header.sig_names, header.units, strict=True):
        factor = _UNIT_TO_MV.get(unit.lower())
        if factor is None:
            raise RecordReject("unsupported_units",
                               f"{source}: signal {name!r} is in {unit!r}, expected mV, uV or V")
        factors.append(factor)
    return np.asarray(factors)


def checksum_mismatch(sums: np.ndarray, header: WfdbHeader, dat: str) -> RecordReject | None:
    """The ``checksum_mismatch`` reject when the per-signal sample sums ``sums`` (header order)
    disagree with the header's checksums, else ``None`` (also when the header gives none).

    WFDB checksums are the 16-bit sum of a signal's samples; a mismatch means a corrupt file.
    Headers store them either unsigned (wfdb-python) or signed (PTB-XL), so compare mod 2**16.
    """
    if any(c is None for c in header.checksums):
        return None
    got = np.asarray(sums, dtype=np.int64) % 65536
    # mod 2**16 on Python ints first: a corrupt header may hold a number beyond int64
    expected = np.asarray([int(c) % 65536 for c in header.checksums], dtype=np.int64)
    bad = np.flatnonzero(got != expected)
    if not bad.size:
        return None
    names = ", ".join(header.sig_names[i] for i in bad[:4])
    return RecordReject("checksum_mismatch",
                        f"{dat}: samples do not match the header checksum of {names}")


def dat_path(record_path: str, header: WfdbHeader) -> str:
    """The signal file of a fast-path record (its one ``.dat``, beside the header)."""
    return sibling(record_path, header.file_names[0])


def read_digital(record_path: str, header: WfdbHeader,
                 out: Callable[[int], np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The raw samples of a fast-path record (``header.fast_path_ok``): int16 ADC counts as
    stored, frame-interleaved ``(n_samples, n_sig)``, and each signal's gain in counts per mV.

    Checks the file against the header before reading (a wrong header never makes us read or
    allocate more than it promises) and rejects ``missing_file``, ``truncated_dat``,
    ``header_mismatch`` or ``unsupported_units``. Checksums are the caller's (see
    :func:`checksum_mismatch`): the signal stage takes the sums from its own statistics pass.
    ``out(n_values)``, if given, returns an int16 buffer of at least that size to read into
    (the result is then a view of it, valid until the buffer is reused).
    """
    dat = dat_path(record_path, header)
    offset = header.byte_offsets[0]
    n_sig = header.n_sig
    factors = _mv_factors(header, dat)
    try:
        fd = os.open(dat, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO: no hang
    except FileNotFoundError:
        raise RecordReject("missing_file", f"{dat} does not exist") from None
    except OSError as exc:  # no permission
        raise RecordReject("missing_file", f"{dat}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # a folder opens too, and has a size
            raise RecordReject("missing_file", f"{dat} is a directory or other non-file, "
                                               "not a signal file")
        n_bytes = info.st_size - offset
        frame_bytes = 2 * n_sig
        if n_bytes <= 0 or n_bytes % frame_bytes:
            raise RecordReject("truncated_dat",
                               f"{dat}: {max(n_bytes, 0)} data bytes is not a whole number of "
                               f"{n_sig}-signal frames (file cut off or empty)")
        n_frames = n_bytes // frame_bytes
        expected = header.n_samples or n_frames
        if n_frames < expected:
            raise RecordReject("truncated_dat", f"{dat}: holds {n_frames} samples per signal, "
                                                f"header says {expected}")
        if n_frames > expected:
            raise RecordReject("header_mismatch", f"{dat}: holds {n_frames} samples per signal, "
                                                  f"header says {expected}")
        # os.preadv straight into the array: no file object, no intermediate bytes
        n_values = n_frames * n_sig
        buffer = np.empty(n_values, dtype="<i2") if out is None else out(n_values)
        raw = buffer[:n_values].reshape(n_frames, n_sig)
        view = memoryview(raw).cast("B")
        got = 0
        while got < raw.nbytes:  # regular files return it all at once; be safe anyway
            more = os.preadv(fd, [view[got:]], offset + got)
            if not more:
                break
            got += more
    except IsADirectoryError:
        raise RecordReject("missing_file", f"{dat} is a directory") from None
    finally:
        os.close(fd)
    if got != raw.nbytes:  # the file shrank while we read it
        raise RecordReject("truncated_dat", f"{dat}: short read")
    gain = header.adc_gain if factors is None else header.adc_gain / factors
    return raw, gain


def _read_fast(record_path: str, header: WfdbHeader, verify_checksum: bool) -> EcgRecord:
    """Format 16, one file: ``np.fromfile`` + vectorised gain/baseline, identical to wfdb."""
    raw, gain = read_digital(record_path, header)
    digital = np.ascontiguousarray(raw.T)
    if verify_checksum:
        reject = checksum_mismatch(digital.sum(axis=1, dtype=np.int64), header,
                                   dat_path(record_path, header))
        if reject is not None:
            raise reject
    n_sig = header.n_sig
    # wfdb's dac() computes (float64(d) - baseline) / gain; the same float64 operations in the
    # same order give bit-identical values, fused here into one pass when baselines are 0
    # (int16 -> float64 is exact and x - 0.0 == x).
    signal = np.empty(digital.shape, dtype=np.float64)
    if np.any(header.baseline):
        np.subtract(digital, header.baseline[:, None].astype(np.float64), out=signal)
        signal /= gain[:, None]
    else:
        np.divide(digital, gain[:, None], out=signal)
    if digital.min() == INVALID_SAMPLE_16:  # one cheap pass; the mask only when needed
        signal[digital == INVALID_SAMPLE_16] = np.nan
    return EcgRecord(signal=signal, fs=float(header.fs), sig_names=list(header.sig_names),
                     adc_gain=np.asarray(gain, dtype=np.float64),
                     baseline=header.baseline.copy(), digital=digital,
                     record_name=header.record_name, units=["mV"] * n_sig,
                     comments=list(header.comments))


def _read_with_wfdb(record_path: str, header: WfdbHeader) -> EcgRecord:
    """Anything the fast path does not cover: let wfdb decode it, keep our reject reasons."""
    import wfdb  # lazy: importing wfdb pulls in pandas and matplotlib (~0.5 s)

    hea = f"{record_path}.hea"
    for name in sorted(set(header.file_names)):
        if name.startswith("~"):
            continue
        path = os.path.join(os.path.dirname(record_path), name)
        if not os.path.exists(path):
            raise RecordReject("missing_file", f"{path} does not exist")
        if not os.path.isfile(path):
            raise RecordReject("missing_file", f"{path} is a directory or other non-file, "
                                               "not a signal file")
    try:
        rec = wfdb.rdrecord(record_path)
    except FileNotFoundError as exc:
        raise RecordReject("missing_file", f"{hea}: {exc}") from None
    except Exception as exc:  # wfdb raises bare ValueError/IndexError/... on odd files
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise RecordReject("unsupported_format", f"{hea}: wfdb cannot read it: {detail}") from None
    if rec.p_signal is None:
        raise RecordReject("unsupported_format", f"{hea}: wfdb returned no uniform signal")
    n = rec.p_signal.shape[0]
    if header.n_samples and n < header.n_samples:
        raise RecordReject("truncated_dat",
                           f"{hea}: holds {n} samples per signal, header says {header.n_samples}")
    units = list(rec.units or ["mV"] * rec.n_sig)
    factors = np.asarray([_UNIT_TO_MV.get(u.lower(), np.nan) for u in units])
    if np.isnan(factors).any():
        bad = units[int(np.flatnonzero(np.isnan(factors))[0])]
        raise RecordReject("unsupported_units", f"{hea}: unit {bad!r}, expected mV, uV or V")
    signal = np.ascontiguousarray(rec.p_signal.T, dtype=np.float64)
    gain = np.asarray(rec.adc_gain, dtype=np.float64)
    if np.any(factors != 1.0):
        signal *= factors[:, None]
        gain = gain / factors
    return EcgRecord(signal=signal, fs=float(rec.fs), sig_names=list(rec.sig_name),
                     adc_gain=gain, baseline=np.asarray(rec.baseline, dtype=np.int64),
                     digital=None, record_name=rec.record_name, units=["mV"] * rec.n_sig,
                     comments=list(rec.comments or []))


def read_record(record_path: str | Path, verify_checksum: bool = True) -> EcgRecord:
    """Read a WFDB record given its path without extension, like ``wfdb.rdsamp``.

    Format-16 single-file records take the numpy fast path; all else goes through wfdb.
    ``verify_checksum`` compares the header's per-signal checksums (when present) with the data
    on the fast path, turning silent bit rot into a ``checksum_mismatch`` reject.
    """
    path = os.fspath(record_path)
    header = read_header(path)
    if header.fast_path_ok:
        return _read_fast(path, header, verify_checksum)
    return _read_with_wfdb(path, header)
