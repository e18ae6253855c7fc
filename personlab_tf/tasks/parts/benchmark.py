"""The part parser's matching benchmark of scripts/benchmark.py matching (docs/parts.md): each matcher of
matching.MATCHERS (and the LP without acceleration) against the Hungarian assignment on random score matrices,
and the milliseconds of one image's limb matching (decode.limb_connections) and of the matcher alone."""

import dataclasses
import sys
from typing import Any, Dict, Sequence, Tuple

import numpy as np
import tensorflow as tf
from scipy.optimize import linear_sum_assignment

from personlab_tf.evaluation.timing import FRAME_HEIGHT, FRAME_WIDTH, interleaved_medians
from personlab_tf.skeleton import COCO17
from personlab_tf.tasks.parts import assignment_check, matching
from personlab_tf.tasks.parts.decode import PartsDecoding, limb_connections


def limb_matching_inputs(seed: int = 1) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor, int]:
    """Random inputs of one image's limb matching: limb heatmaps of an 801 x 529 frame at stride 4 and 20
    candidates per keypoint type, uniformly spread over it (every connection score near 0.5, all usable)."""
    rng = np.random.default_rng(seed)
    height, width, stride = FRAME_HEIGHT // 4 + 1, FRAME_WIDTH // 4 + 1, 4
    limb_maps = tf.constant(rng.random((height, width, len(COCO17.limbs))), tf.float32)
    positions = tf.constant(rng.random((COCO17.num_keypoints, 20, 2)) * [FRAME_WIDTH - 1, FRAME_HEIGHT - 1],
                            tf.float32)
    return limb_maps, positions, tf.ones([COCO17.num_keypoints, 20], tf.bool), stride


def matching_benchmark(matrices: int, repeats: int, lp_settings: Sequence[str] = ()) -> Dict[str, Any]:
    """Each matcher's agreement with the Hungarian assignment (scipy) on `matrices` random score matrices and
    its milliseconds per image (medians of `repeats` interleaved runs); `lp_settings` adds LP settings
    "PGD_STEPSxDYKSTRA_SWEEPSxSTEP_SIZE" (e.g. "100x10x0.1") to the comparison."""
    scores, valid = assignment_check.random_score_matrices(matrices, 20, seed=0)
    settings = {"lp_plain_pgd": dataclasses.replace(matching.EVALUATION, accelerated=False)}
    for spec in lp_settings:
        steps, sweeps, step_size = spec.split("x")
        settings[f"lp_{spec}"] = matching.SolverSettings(int(steps), int(sweeps), float(step_size))
    matchers = dict(matching.MATCHERS, **{name: lambda s, v, lp=lp: matching.round_assignment(
        matching.solve_assignment(s, v, lp)) for name, lp in settings.items()})
    agreements = {}
    for name, matcher in matchers.items():
        matchings = tf.function(matcher)(scores, valid).numpy()
        agreements[name] = assignment_check.agreement(matchings, scores, valid, linear_sum_assignment)
        print(f"agreement with the Hungarian assignment ({name}): {agreements[name]:.3f}", file=sys.stderr)
    limb_maps, positions, candidates, stride = limb_matching_inputs()
    limb_scores = tf.constant(np.random.default_rng(1).random((len(COCO17.limbs), 20, 20)), tf.float32)
    every = tf.ones(limb_scores.shape, tf.bool)
    functions = {}
    for name, matcher in matching.MATCHERS.items():
        options = PartsDecoding(matcher=name)
        whole = tf.function(lambda options=options: limb_connections(limb_maps, positions, candidates, stride,
                                                                     COCO17.limbs, options)[0])
        alone = tf.function(lambda matcher=matcher: matcher(limb_scores, every))
        functions[(name, "ms_per_image")] = lambda whole=whole: whole().numpy()
        functions[(name, "solver_ms_per_image")] = lambda alone=alone: alone().numpy()
    for name in lp_settings:
        alone = tf.function(lambda matcher=matchers[f"lp_{name}"]: matcher(limb_scores, every))
        functions[(f"lp_{name}", "solver_ms_per_image")] = lambda alone=alone: alone().numpy()
    training = tf.function(lambda: matching.solve_assignment(limb_scores, every, matching.TRAINING))
    functions[("training_lp", "solver_ms_per_image")] = lambda: training().numpy()
    medians = interleaved_medians(functions, repeats)
    results = {name: {"agreement": agreement} for name, agreement in agreements.items()}
    results["training_lp"] = {}
    for (name, what), value in medians.items():
        results[name][what] = round(value, 2)
    default = PartsDecoding().matcher
    for name, result in results.items():
        print(f"{name}: {result}", file=sys.stderr)
    return {"matcher": default, "matching_agreement": agreements[default],
            "ms_per_image": results[default]["ms_per_image"], "matchers": results, "matrices": matrices,
            "settings": {"training": dataclasses.asdict(matching.TRAINING),
                         "evaluation": dataclasses.asdict(matching.EVALUATION)}}
