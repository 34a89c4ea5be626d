"""ecg-instruct: turn raw ECG archives into instruction-tuning datasets for ECG report generation."""

__version__ = "0.1.0"
