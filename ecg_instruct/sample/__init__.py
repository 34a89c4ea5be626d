"""The synthetic sample mirror: PhysioNet-shaped folders of every source, generated.

`mirror` writes the PTB-XL and MIMIC-IV-ECG layouts (fixed findings, or reports that follow
from the signals via `physiology`), `cinc2021` and `code15` the Challenge 2021 and CODE-15%
layouts; all simulate their signals with `simulator`. `ecgqa` writes ECG-QA-shaped questions
about the PTB-XL and MIMIC-IV-ECG records, answered from their labels.
"""

from ecg_instruct.sample.cinc2021 import write_cinc2021
from ecg_instruct.sample.code15 import write_code15
from ecg_instruct.sample.mirror import write_learnable_mirror, write_sample_mirror

__all__ = ["write_cinc2021", "write_code15", "write_learnable_mirror", "write_sample_mirror"]
