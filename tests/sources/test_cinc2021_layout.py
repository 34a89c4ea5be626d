"""The Challenge 2021 record layout we write (sample, tests) is what MATLAB and WFDB read."""

from __future__ import annotations

import numpy as np
import pytest

from ecg_instruct.signals.wfdb_io import read_header, read_record
from ecg_instruct.sources.cinc2021_layout import write_challenge_record


@pytest.mark.parametrize("comments", [True, False])
def test_mat_file_is_matlab_v4_and_reads_bit_identical_to_wfdb(tmp_path, comments):
    import wfdb
    from scipy.io import loadmat

    counts = np.random.default_rng(3).integers(-30000, 30000, size=(12, 2570)).astype(np.int16)
    path = write_challenge_record(tmp_path, "I0001", counts, 257, age=61, sex="Male",
                                  dx=["426783006"])
    np.testing.assert_array_equal(loadmat(f"{path}.mat")["val"], counts)
    header_text = (tmp_path / "I0001.hea").read_text()
    assert "I0001.mat 16+24 1000/mv 16 0 " in header_text
    if not comments:  # the compiled scanner's route (comment-free headers)
        (tmp_path / "I0001.hea").write_text(
            "".join(line + "\n" for line in header_text.splitlines() if not line.startswith("#")))
    header = read_header(path)
    assert header.fast_path_ok and header.byte_offsets == [24] * 12
    ecg = read_record(path)
    samples, fields = wfdb.rdsamp(str(path))
    assert ecg.digital is not None and fields["fs"] == 257
    np.testing.assert_array_equal(ecg.signal, samples.T)
    assert ecg.comments == (["Age: 61", "Sex: Male", "Dx: 426783006", "Rx: Unknown",
                             "Hx: Unknown", "Sx: Unknown"] if comments else [])
