"""The fast reader must equal wfdb.rdsamp bit for bit and turn every broken file into a reject."""

from __future__ import annotations

import os

import numpy as np
import pytest
import wfdb

from ecg_instruct.errors import RecordReject
from ecg_instruct.signals.wfdb_io import parse_header, read_header, read_record

PTBXL_HEADER = """00001_hr 12 500 5000
00001_hr.dat 16 1000.0(0)/mV 16 0 -49 -1150 0 I
00001_hr.dat 16 1000.0(0)/mV 16 0 -50 -2142 0 II
00001_hr.dat 16 1000.0(0)/mV 16 0 -1 -992 0 III
00001_hr.dat 16 1000.0(0)/mV 16 0 49 1646 0 AVR
00001_hr.dat 16 1000.0(0)/mV 16 0 -24 -79 0 AVL
00001_hr.dat 16 1000.0(0)/mV 16 0 -25 -1566 0 AVF
00001_hr.dat 16 1000.0(0)/mV 16 0 -35 -1050 0 V1
00001_hr.dat 16 1000.0(0)/mV 16 0 -44 -2400 0 V2
00001_hr.dat 16 1000.0(0)/mV 16 0 -8 -2211 0 V3
00001_hr.dat 16 1000.0(0)/mV 16 0 5 -1234 0 V4
00001_hr.dat 16 1000.0(0)/mV 16 0 -19 -1500 0 V5
00001_hr.dat 16 1000.0(0)/mV 16 0 -23 -1600 0 V6
"""


def _assert_same_as_rdsamp(path, rec) -> None:
    p_signal, fields = wfdb.rdsamp(str(path))
    assert rec.signal.dtype == np.float64
    assert rec.signal.shape == p_signal.T.shape
    # bit-identical, NaN in the same places
    assert np.array_equal(rec.signal, p_signal.T, equal_nan=True)
    assert rec.sig_names == fields["sig_name"]
    assert rec.fs == fields["fs"]


def test_parse_ptbxl_header_line_conventions():
    h = parse_header(PTBXL_HEADER)
    assert (h.record_name, h.n_sig, h.fs, h.n_samples) == ("00001_hr", 12, 500.0, 5000)
    assert h.sig_names[3:6] == ["AVR", "AVL", "AVF"]
    assert h.fmt == ["16"] * 12 and h.file_names == ["00001_hr.dat"] * 12
    assert np.all(h.adc_gain == 1000.0) and np.all(h.baseline == 0)
    assert h.checksums[0] == -1150 and h.init_values[0] == -49 and h.units[0] == "mV"
    assert h.byte_offsets == [0] * 12 and h.fast_path_ok


def test_parse_header_defaults_follow_wfdb():
    text = ("rec 3\nrec.dat 16 0 12 1024\nrec.dat 16\n"
            "rec.dat 16+24 200(5)/uV 16 7 0 0 0 lead with spaces\n")
    h = parse_header(text)
    assert h.fs == 250.0 and h.n_samples == 0  # fs default 250, no length given
    assert h.adc_gain.tolist() == [200.0, 200.0, 200.0]  # gain 0 and absent mean 200
    assert h.baseline.tolist() == [1024, 0, 5]  # baseline defaults to ADC zero
    assert h.units == ["mV", "mV", "uV"]
    assert h.byte_offsets == [0, 0, 24]
    assert h.sig_names[2] == "lead with spaces"
    assert not h.fast_path_ok  # byte offsets differ


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("", "no record line"),
        ("# only a comment\n", "no record line"),
        ("rec\n", "needs a name"),
        ("rec x 500 5000\n", "signal count"),
        ("rec 2 500 5000\nrec.dat 16 1000(0)/mV 16 0 0 0 0 I\n", "2 signals but 1"),
        ("rec 1 abc 5000\nrec.dat 16\n", "sampling frequency"),
        ("rec 1 -5 5000\nrec.dat 16\n", "sampling frequency"),
        ("rec 1 500 5000\nrec.dat sixteen\n", "invalid format"),
        ("rec 1 500 5000\nrec.dat 16 big(0)/mV\n", "invalid gain"),
        ("rec 1 500 5000\n../../etc/passwd 16\n", "invalid file name"),
        ("rec 1 500 5000\nrec.dat 16 1000(0)/mV 16 zero\n", "ADC zero"),
        ("rec 1 500 5000\nrec.dat 16 1000(0)/mV 16 0 0 sum\n", "checksum"),
        ("rec 1 500 5000\nrec.dat 16 1000(99999999999999999999)/mV\n", "out of range"),
        ("rec 1 500 5000\nrec.dat 16 1000/mV 16 -3000000000\n", "out of range"),
    ],
)
def test_garbage_headers_are_bad_header(text, fragment):
    with pytest.raises(RecordReject) as exc:
        parse_header(text, "x.hea")
    assert exc.value.reason == "bad_header"
    assert fragment in exc.value.detail and "x.hea" in exc.value.detail


def test_ptbxl_record_matches_rdsamp_with_nan(tmp_path, ecg500, sig):
    x = ecg500.copy()
    x[4, 100:110] = np.nan  # written as the -32768 sentinel
    path = sig.write_ptbxl(tmp_path, 1, x)
    rec = read_record(path)
    _assert_same_as_rdsamp(path, rec)
    assert rec.sig_names[3:6] == ["AVR", "AVL", "AVF"]
    assert rec.digital is not None and rec.digital.dtype == np.int16
    assert rec.digital.shape == (12, 5000) and rec.digital.flags.c_contiguous
    assert np.isnan(rec.signal[4, 100:110]).all() and np.isfinite(rec.signal[4, 110:]).all()
    assert rec.adc_gain.tolist() == [1000.0] * 12
    # values are the source's ADC grid: 1 µV
    assert np.allclose(rec.signal[0], np.round(ecg500[0], 3), atol=1e-12)


def test_mimic_record_matches_rdsamp(tmp_path, ecg500, sig):
    path = sig.write_mimic(tmp_path, 40689238, ecg500)
    assert " 13:26:00 21/04/2180" in (tmp_path / "40689238.hea").read_text().splitlines()[0]
    rec = read_record(path)
    _assert_same_as_rdsamp(path, rec)
    assert rec.sig_names[3:6] == ["aVR", "aVF", "aVL"]
    assert rec.adc_gain.tolist() == [200.0] * 12


def test_nonzero_baseline_and_signed_checksums(tmp_path, ecg500):
    """Baselines other than 0 and PTB-XL-style signed checksums read like wfdb does."""
    counts = np.rint(ecg500[:2] * 1000).astype(np.int16) + np.array([[100], [-300]], np.int16)
    counts.T.astype("<i2").tofile(tmp_path / "r.dat")
    sums = [int(s) % 65536 for s in counts.astype(np.int64).sum(axis=1)]
    signed = [s - 65536 if s > 32767 else s for s in sums]
    (tmp_path / "r.hea").write_text(
        "r 2 500 5000\n"
        f"r.dat 16 1000.0(100)/mV 16 0 0 {signed[0]} 0 I\n"
        f"r.dat 16 1000.0(-300)/mV 16 0 0 {signed[1]} 0 II\n"
    )
    rec = read_record(tmp_path / "r")
    _assert_same_as_rdsamp(tmp_path / "r", rec)
    assert np.allclose(rec.signal, np.round(ecg500[:2], 3))


def test_byte_offset_fast_path_matches_rdsamp(tmp_path, ecg500):
    counts = np.rint(ecg500[:3] * 200).astype("<i2")
    (tmp_path / "o.dat").write_bytes(b"\x07" * 24 + counts.T.tobytes())
    sums = counts.astype(np.int64).sum(axis=1) % 65536
    lines = [f"o.dat 16+24 200(0)/mV 16 0 0 {c} 0 {n}"
             for c, n in zip(sums, ("I", "II", "III"), strict=True)]
    (tmp_path / "o.hea").write_text("o 3 500 5000\n" + "\n".join(lines) + "\n")
    rec = read_record(tmp_path / "o")
    assert rec.digital is not None  # fast path
    _assert_same_as_rdsamp(tmp_path / "o", rec)


def test_other_format_falls_back_to_wfdb(tmp_path, ecg500, sig):
    path = sig.write_record(tmp_path, "f212", ecg500, 500, 200.0, sig.MIMIC_NAMES, fmt="212")
    assert not read_header(path).fast_path_ok
    rec = read_record(path)
    assert rec.digital is None
    _assert_same_as_rdsamp(path, rec)


def test_microvolt_units_are_converted_to_mv(tmp_path, ecg500):
    counts = np.rint(ecg500[:1] * 1000).astype("<i2")  # 1 count = 1 µV
    counts.T.tofile(tmp_path / "u.dat")
    (tmp_path / "u.hea").write_text("u 1 500 5000\nu.dat 16 1(0)/uV 16 0 0 0 0 I\n")
    rec = read_record(tmp_path / "u", verify_checksum=False)
    assert np.allclose(rec.signal, np.round(ecg500[:1], 3)) and rec.adc_gain[0] == 1000.0
    (tmp_path / "u.hea").write_text("u 1 500 5000\nu.dat 16 1(0)/mmHg 16 0 0 0 0 I\n")
    with pytest.raises(RecordReject, match="unsupported_units"):
        read_record(tmp_path / "u")


def test_missing_files(tmp_path, ecg500, sig):
    with pytest.raises(RecordReject) as exc:
        read_record(tmp_path / "nothing")
    assert exc.value.reason == "missing_file" and "nothing.hea" in exc.value.detail
    path = sig.write_ptbxl(tmp_path, 2, ecg500)
    os.remove(f"{path}.dat")
    with pytest.raises(RecordReject) as exc:
        read_record(path)
    assert exc.value.reason == "missing_file" and "00002_hr.dat" in exc.value.detail


@pytest.mark.parametrize(
    "cut, reason",
    [
        (-1, "truncated_dat"),  # cut mid-sample
        (-24, "truncated_dat"),  # whole frame missing
        (1, "truncated_dat"),  # a stray byte: not a whole frame
        (24, "header_mismatch"),  # one frame more than the header says
        ("empty", "truncated_dat"),
    ],
)
def test_size_disagreements(tmp_path, ecg500, sig, cut, reason):
    path = sig.write_ptbxl(tmp_path, 3, ecg500)
    dat = f"{path}.dat"
    data = open(dat, "rb").read()
    if cut == "empty":
        data = b""
    elif cut < 0:
        data = data[:cut]
    else:
        data = data + b"\0" * cut
    open(dat, "wb").write(data)
    with pytest.raises(RecordReject) as exc:
        read_record(path)
    assert exc.value.reason == reason


def test_checksum_mismatch_detects_corruption(tmp_path, ecg500, sig):
    path = sig.write_ptbxl(tmp_path, 4, ecg500)
    dat = f"{path}.dat"
    data = bytearray(open(dat, "rb").read())
    data[2 * 12 * 1000 + 2 * 7] ^= 0x10  # one bit of V2 at sample 1000
    open(dat, "wb").write(bytes(data))
    with pytest.raises(RecordReject) as exc:
        read_record(path)
    assert exc.value.reason == "checksum_mismatch" and "V2" in exc.value.detail
    rec = read_record(path, verify_checksum=False)
    assert rec.signal.shape == (12, 5000)


def test_unreadable_format_is_unsupported(tmp_path):
    (tmp_path / "z.dat").write_bytes(b"\0" * 100)
    (tmp_path / "z.hea").write_text("z 1 500 50\nz.dat 999 200(0)/mV 16 0 0 0 0 I\n")
    with pytest.raises(RecordReject) as exc:
        read_record(tmp_path / "z")
    assert exc.value.reason == "unsupported_format"


def test_offset_beyond_end_is_truncated(tmp_path):
    np.zeros(24, "<i2").tofile(tmp_path / "b.dat")
    (tmp_path / "b.hea").write_text("b 1 500 24\nb.dat 16+4096 200(0)/mV 16 0 0 0 0 I\n")
    with pytest.raises(RecordReject) as exc:
        read_record(tmp_path / "b")
    assert exc.value.reason == "truncated_dat"


def test_multi_file_record_falls_back_to_wfdb(tmp_path, ecg500):
    """Two .dat files (one per signal): not the fast path, still read exactly like rdsamp."""
    counts = np.rint(ecg500[:2] * 200).astype("<i2")
    counts[0].tofile(tmp_path / "m_1.dat")
    counts[1].tofile(tmp_path / "m_2.dat")
    sums = counts.astype(np.int64).sum(axis=1) % 65536
    (tmp_path / "m.hea").write_text(
        "m 2 500 5000\n"
        f"m_1.dat 16 200(0)/mV 16 0 0 {sums[0]} 0 I\n"
        f"m_2.dat 16 200(0)/mV 16 0 0 {sums[1]} 0 II\n"
    )
    assert not read_header(tmp_path / "m").fast_path_ok
    rec = read_record(tmp_path / "m")
    assert rec.digital is None
    _assert_same_as_rdsamp(tmp_path / "m", rec)
    assert np.allclose(rec.signal, np.round(ecg500[:2] * 200) / 200)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
@pytest.mark.parametrize("which", [".hea", ".dat"])
def test_a_fifo_named_like_a_record_file_is_rejected_not_waited_on(tmp_path, sig, ecg500, which):
    """A plain `open` of a FIFO waits for a writer: one odd file in a mirror hung the worker,
    and so the build. It is a reject with the file's name instead."""
    import threading

    path = sig.write_ptbxl(tmp_path, 1, ecg500)
    target = f"{path}{which}"
    os.remove(target)
    os.mkfifo(target)
    outcome: list[object] = []

    def run() -> None:
        try:
            read_record(path)
            outcome.append("read")
        except RecordReject as exc:
            outcome.append(exc)

    threading.Thread(target=run, daemon=True).start()
    for _ in range(50):
        if outcome:
            break
        threading.Event().wait(0.1)
    assert outcome, "the reader blocked on a FIFO"
    assert isinstance(outcome[0], RecordReject) and target in outcome[0].detail
