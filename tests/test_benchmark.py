"""scripts/benchmark.py decode: the defaults' pair is timed whatever --decode_variants names."""

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
