"""tasks/parts/benchmark.py: the matching benchmark's figures on a few matrices (the 1000 of docs/parts.md cost
minutes): the default matcher, the Hungarian one, agrees with scipy's assignment on every matrix."""

from personlab_tf.tasks.parts import benchmark, matching


def test_the_default_matcher_agrees_with_the_hungarian_assignment():
    summary = benchmark.matching_benchmark(matrices=30, repeats=1)
    assert summary["matcher"] == "hungarian" and summary["matching_agreement"] == 1.0
    assert set(summary["matchers"]) == set(matching.MATCHERS) | {"lp_plain_pgd", "training_lp"}
    assert summary["matrices"] == 30 and summary["ms_per_image"] > 0.0
