"""ecg-instruct: turn raw ECG archives into instruction-tuning datasets for ECG report generation."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """`from ecg_instruct import with_signals` without importing pyarrow at package import."""
    if name == "with_signals":
        from ecg_instruct.questions.signals import with_signals

        return with_signals
    raise AttributeError(f"module 'ecg_instruct' has no attribute {name!r}")
