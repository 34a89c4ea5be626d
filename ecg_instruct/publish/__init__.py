"""Stage 5 (publish): sharded Parquet, rejects table and dataset card."""
