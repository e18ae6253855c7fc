"""scripts/benchmark.py: decode times the defaults' pair whatever --decode_variants names; train times the
demo's step with the refinement plain and compiled; serve times the inference forward plain and compiled."""

from inference_fixtures import run_script


def test_decode_reports_the_defaults_when_the_variants_leave_them_out():
    _, summary = run_script("benchmark.py", "decode", "--decode_variants", "8:grid", "--decode_people", "5",
                            "--decode_repeats", "2")
    timings = summary["decode_ms"]
    defaults = summary["defaults"]
    default_full = f"full_s{defaults['decode_stride']}_{defaults['mask_resolution']}"
    assert set(timings) == {"poses_s8", "full_s8_grid", f"poses_s{defaults['decode_stride']}", default_full,
                            "poses", "full"}
    assert timings["full"] == timings[default_full] and list(timings["poses"]) == ["5"]


def test_train_times_the_demo_step_with_the_refinement_plain_and_compiled():
    """Only the demo and smoke entries when no ResNet-101 variant is named; the demo's ratio is the compiled
    step's time over the plain one's (1 / rate each, to the rounding of the rates)."""
    _, summary = run_script("benchmark.py", "train", "--train_variants=", "--train_steps", "1", "--demo_steps", "2",
                            "--train_images", "2")
    assert set(summary["train"]) == {"smoke", "demo"}
    demo = summary["train"]["demo"]
    expected = demo["plain_steps_per_s"] / demo["compiled_refinement_steps_per_s"]
    assert abs(demo["ratio"] - expected) <= 2e-3 * expected + 1e-3


def test_serve_times_the_inference_forward_plain_and_compiled():
    """Each ratio is its two medians' quotient (to the rounding of the milliseconds)."""
    _, summary = run_script("benchmark.py", "serve", "--serve_backbone", "resnet_tiny", "--serve_repeats", "1")
    assert set(summary) == {"serve_ms", "backbone_ms", "ratio", "forward_ms", "forward_xla_ms", "xla_ratio",
                            "forward_first_call_ms", "forward_xla_first_call_ms"}
    for ratio, numerator, denominator in (("ratio", "serve_ms", "backbone_ms"),
                                          ("xla_ratio", "forward_xla_ms", "forward_ms")):
        expected = summary[numerator] / summary[denominator]
        rounding = expected * (0.05 / summary[numerator] + 0.05 / summary[denominator]) + 5e-4
        assert abs(summary[ratio] - expected) <= rounding
