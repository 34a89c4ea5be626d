"""Baseline trainer: a 1-D ResNet ECG encoder feeding a small causal Transformer decoder.

Torch is an optional extra (``pip install 'ecg-instruct[train]'``); nothing in this package
imports it at module import time, so the rest of the CLI works without it.
"""
