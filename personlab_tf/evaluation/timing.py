"""How scripts/benchmark.py times: medians of repeated runs after warm-up runs, and
side-by-side settings run in turn so that a machine shared with other jobs slows them alike (ratios measured
in one run, never timed unit tests)."""

import statistics
import time
from typing import Any, Callable, Dict, Hashable


def median_ms(function: Callable[[], Any], repeats: int, warmup: int = 3) -> float:
    """Median wall time of `function()` in milliseconds over `repeats` runs after `warmup` untimed runs."""
    return interleaved_medians({None: function}, repeats, warmup)[None]


def interleaved_medians(functions: Dict[Hashable, Callable[[], Any]], repeats: int,
                        warmup: int = 2) -> Dict[Hashable, float]:
    """{name: median milliseconds} of several functions, each run `warmup` times untimed, then the `repeats`
    rounds run them in turn (a, b, a, b, ...)."""
    for function in functions.values():
        for _ in range(warmup):
            function()
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(values) for name, values in times.items()}


# The frame the decoding, serving and matching benchmarks time: an 801 x 529 image (a COCO-sized frame).
FRAME_HEIGHT, FRAME_WIDTH = 529, 801
