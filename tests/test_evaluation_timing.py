"""evaluation/timing.py: how the benchmarks time (warm-up runs untimed, settings interleaved, medians)."""

from personlab_tf.evaluation import timing


def test_settings_run_in_turn_after_their_warm_up():
    calls = []
    medians = timing.interleaved_medians({"a": lambda: calls.append("a"), "b": lambda: calls.append("b")},
                                         repeats=3, warmup=2)
    assert calls == ["a", "a", "b", "b"] + ["a", "b"] * 3
    assert set(medians) == {"a", "b"} and all(value >= 0.0 for value in medians.values())


def test_the_median_of_known_durations(monkeypatch):
    """With a clock that advances 1, 5 and 2 ms on the three timed runs, the median is 2 ms."""
    ticks = iter([0.0, 0.001, 1.0, 1.005, 2.0, 2.002])
    monkeypatch.setattr(timing.time, "perf_counter", lambda: next(ticks))
    assert abs(timing.median_ms(lambda: None, repeats=3, warmup=1) - 2.0) < 1e-9
