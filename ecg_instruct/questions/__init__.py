"""Question tasks joined to the build's curated ECGs (ECG-QA): reading is in
`sources/ecgqa.py`; here the join, split policy, published config and signal lookup."""
