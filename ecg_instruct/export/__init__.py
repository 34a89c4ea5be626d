"""Exports of a published dataset to the formats ECG-language trainers read (see formats.py)."""

from ecg_instruct.export.formats import FORMATS, ExportSummary, export_dataset

__all__ = ["FORMATS", "ExportSummary", "export_dataset"]
