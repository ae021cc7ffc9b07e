"""The performance harness: `python -m bench [module ...]` (not a test; prints ratios against same-run baselines).

Each module (bench/calendar.py, bench/evaluation.py, ...) has `run() -> list[bench.common.Figure]`; bench/common.py
holds the throwaway database, `median_time`, the trivial-request and trivial-query baselines and a small ward.
"""
