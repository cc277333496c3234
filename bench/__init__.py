"""Benchmarks: zephr-desktop measured against the peers a user would otherwise pick, in one run.

Run ``python -m bench`` (full run, writes ``docs/BENCHMARKS.md``) or ``python -m bench --quick``
(a few iterations, for CI). Every figure is a min and a median over interleaved runs, next to
the peer's figure from the same run and the ratio; no figure is an absolute time on its own.

This package is imported by the benchmark's GUI child processes, so it imports nothing here.
"""
