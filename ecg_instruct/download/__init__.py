"""PhysioNet downloader: resumable, verified against the release's SHA256SUMS.txt, subsettable.

Library entry point `download_release`; the CLI command is `command.download`.
"""

from ecg_instruct.download.fetch import FetchConfig, Interrupted
from ecg_instruct.download.releases import RELEASES
from ecg_instruct.download.run import Summary, download_release

__all__ = [
    "RELEASES",
    "FetchConfig",
    "Interrupted",
    "Summary",
    "download_release",
]
