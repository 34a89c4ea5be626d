"""Stage 1 (index): every source's metadata -> one table of records, each with its split.

`table` reads the sources into the index (and its rejects), `split` assigns splits, `windows`
cuts long recordings into windows, `stored` writes the index's bytes (whose digest names the
build's work folder), `stage` is the stage the build runs.
"""
