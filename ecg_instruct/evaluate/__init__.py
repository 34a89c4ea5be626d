"""Report-generation metrics (BLEU-1..4, METEOR, ROUGE-L, CIDEr-D) and the `evaluate` command.

The metric code is pure Python and imports no torch; only generating predictions needs the
``train`` extra.
"""
