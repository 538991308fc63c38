"""Benchmarks of dunewatch: `python -m bench NAME [options]` from the project's root.

Evaluation lives here, not in the product packages: the reference trackers
and benchmark scenarios (`bench.tracking`), the detectors scored against
labelled images and rendered scenarios (`bench.detection`), GOSPA
(`bench.gospa`), and one driver per part of the stack. Each driver prints a
table and, with `--json`, writes its figures and the machine that measured
them to `bench/results/NAME.json` (`bench.results`).
"""
