"""The performance harness: `python -m bench [module ...]` (not a test; prints ratios against same-run baselines).

Each module (bench/calendar.py, bench/evaluation.py, ...) has `run()` returning a list of `bench.common.Figure` (made
with `bench.common.figure(name, measured, baseline, bar)`: judged PASS/FAIL by its ratio), or of tuples
`(name, value, note[, passed])` for figures that are not a ratio (shown as is; without `passed`, information only).
bench/common.py holds the throwaway database, `median_time`, `paired_medians`, the trivial-request and trivial-query
baselines and a small ward.
"""
