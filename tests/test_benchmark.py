"""scripts/benchmark.py: decode times the defaults' pair whatever --decode_variants names and measures a variant's
AP as oracle_eval.py does; train times the demo's step with the refinement plain and compiled; serve times the
inference forward plain and compiled."""

from coco_samples import sample_json_path
from inference_fixtures import run_script
from personlab_tf.tfds_builders.coco_person import layout


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


def test_decode_times_the_defaults_and_measures_a_variants_ap_as_the_oracle_script_does():
    """The defaults' pair is timed whatever the variants name. The AP beside the time is scripts/oracle_eval.py's
    for the variant's bindings: `oracle_eval.py --task personlab --map_noise realistic --noise_seed 1` on the val
    sample with "PersonLabInference.decode_stride = 8", "PersonLabInference.mask_resolution = 'grid'" and
    "PersonLabInference.max_side = 257" prints keypoint AP 0.11917 and segm AP 0.05314 (one seed: the mean is
    that run's AP); a single variant is the default the rule picks."""
    folder = sample_json_path(layout.VALIDATION).parent
    _, summary = run_script("benchmark.py", "decode", "--decode_variants", "8:grid", "--decode_people", "5",
                            "--decode_repeats", "2", "--decode_accuracy_variants", "s8_grid",
                            "--decode_oracle_annotations", str(folder / "person_keypoints.json"),
                            "--decode_oracle_images", str(folder / "images"), "--decode_oracle_seeds", "1",
                            "--decode_oracle_bindings", "PersonLabInference.max_side = 257")
    timings = summary["decode_ms"]
    defaults = summary["defaults"]
    default_full = f"full_s{defaults['decode_stride']}_{defaults['mask_resolution']}"
    assert set(timings) == {"poses_s8", "full_s8_grid", f"poses_s{defaults['decode_stride']}", default_full,
                            "poses", "full"}
    assert timings["full"] == timings[default_full] and list(timings["poses"]) == ["5"]
    assert summary["accuracy"] == {"s8_grid": {"oracle keypoints_AP": 0.1192, "oracle segm_AP": 0.0531}}
    assert summary["worst_shortfall"] == {"s8_grid": 0.0} and summary["chosen"] == "s8_grid"
    assert summary["full_ms"]["s8_grid"] == timings["full_s8_grid"]["5"]
