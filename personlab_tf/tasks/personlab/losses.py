"""PersonLab's loss table (paper §3.1, §3.2, §4.1) over the shared loss functions of personlab_tf/losses.py.

| term | prediction | target, weights | error | weight |
| --- | --- | --- | --- | --- |
| heatmap | heatmap logits | heatmaps (disks), heatmap weights | logistic | 4 |
| segmentation | segmentation logit | person mask, weights (crowd excluded) | logistic | 2 |
| short-range | short offsets | short offsets, the disks | L1 / R | 1 |
| mid-range | refined mid offsets (Eq. 2) | mid offsets, the source keypoint's disks | L1 / R | 1/4 |
| long-range | refined long offsets (Eq. 5) | long offsets, pixels of exactly one person | L1 / R | 1/8 |

R = 32 px divides every offset error (§4.1). Each term is a per-image mean averaged over the images by default
(personlab_tf/losses.py; `PersonLabNetwork.loss_averaging = 'pooled'` pools the batch). Predictions come at output stride os and are resized to the
target grid (stride s, corner aligned) before the losses; offsets stay in pixels. Corner alignment needs
a crop of S = n os + 1 pixels (801 for os 8, 16 and 32). The auxiliary heads add the same terms with the
same weights, times `auxiliary_weight`.
"""

import dataclasses
import functools
from typing import Dict, Mapping, Optional, Sequence, Tuple, Union

import gin

import tensorflow as tf

from personlab_tf import keys
from personlab_tf.constants import DISK_RADIUS
from personlab_tf.losses import AVERAGE_IMAGES, LossTerm, logistic_loss, offset_l1_loss, table_losses, weighted_total

LOSS_KEYS = (keys.Loss.HEATMAP, keys.Loss.SEGMENTATION, keys.Loss.SHORT, keys.Loss.MID, keys.Loss.LONG)


@gin.configurable
@dataclasses.dataclass(frozen=True)
class PersonLabLossWeights:
    """The weight of each loss term, §4.1, keyed by its loss key (the fields are LOSS_KEYS, keys.Loss):
    gin `PersonLabLossWeights.mid_offset_loss = 0.5`. Its own configurable, so that a run's operative config
    records every weight (and a resumed run with other weights is refused, train/trainer.py)."""

    heatmap_loss: float = 4.0
    segmentation_loss: float = 2.0
    short_offset_loss: float = 1.0
    mid_offset_loss: float = 0.25
    long_offset_loss: float = 0.125


def loss_weights_of(weights: Union[PersonLabLossWeights, Mapping[str, float], Sequence[float]]
                    ) -> PersonLabLossWeights:
    """The PersonLabLossWeights of `weights`: itself; a {loss key: weight} dict (as JSON records it; a term not
    named keeps its configured weight), ValueError naming a key that is not a PersonLab loss term; or the
    sequence of five weights in LOSS_KEYS order that runs and SavedModels recorded before the weights were
    keyed."""
    if isinstance(weights, PersonLabLossWeights):
        return weights
    if isinstance(weights, Mapping):
        unknown = sorted(set(weights) - set(LOSS_KEYS))
        if unknown:
            raise ValueError(f"loss weights {', '.join(unknown)}: not PersonLab loss terms "
                             f"(its terms: {', '.join(LOSS_KEYS)})")
        return PersonLabLossWeights(**{key: float(value) for key, value in weights.items()})
    if len(weights) != len(LOSS_KEYS):
        raise ValueError(f"loss weights {list(weights)}: expected PersonLabLossWeights, or {{loss key: weight}} of "
                         f"{', '.join(LOSS_KEYS)}")
    return PersonLabLossWeights(*(float(value) for value in weights))


def loss_table(loss_weights: Optional[PersonLabLossWeights] = None, averaging: str = AVERAGE_IMAGES,
               radius: float = DISK_RADIUS) -> Tuple[LossTerm, ...]:
    """The five rows, each weighted by its field of `loss_weights` (None: the configured PersonLabLossWeights)
    and averaged as `averaging` says (personlab_tf/losses.py); the offset terms divided by the targets' disk
    radius `radius` (§3.1-3.2: R of the configured targets, 32 px at the paper's scale)."""
    weights = loss_weights if loss_weights is not None else PersonLabLossWeights()
    heatmap, segmentation, short, mid, long = (getattr(weights, key) for key in LOSS_KEYS)
    logistic = functools.partial(logistic_loss, averaging=averaging)
    offsets = functools.partial(offset_l1_loss, radius=radius, averaging=averaging)
    return (
        LossTerm(keys.Loss.HEATMAP, keys.Prediction.HEATMAP_LOGITS, keys.Map.HEATMAPS, keys.Map.HEATMAP_WEIGHTS,
                 logistic, heatmap),
        LossTerm(keys.Loss.SEGMENTATION, keys.Prediction.SEGMENTATION_LOGITS, keys.Map.SEGMENTATION,
                 keys.Map.SEGMENTATION_WEIGHTS, logistic, segmentation),
        LossTerm(keys.Loss.SHORT, keys.Prediction.SHORT_OFFSETS, keys.Map.SHORT_OFFSETS, keys.Map.SHORT_WEIGHTS,
                 offsets, short),
        LossTerm(keys.Loss.MID, keys.Prediction.MID_OFFSETS, keys.Map.MID_OFFSETS, keys.Map.MID_WEIGHTS,
                 offsets, mid),
        LossTerm(keys.Loss.LONG, keys.Prediction.LONG_OFFSETS, keys.Map.LONG_OFFSETS, keys.Map.LONG_WEIGHTS,
                 offsets, long),
    )


def personlab_losses(predictions: Dict[str, tf.Tensor], targets: Dict[str, tf.Tensor],
                     loss_weights: Optional[PersonLabLossWeights] = None, auxiliary_weight: float = 1.0,
                     averaging: str = AVERAGE_IMAGES, radius: float = DISK_RADIUS) -> Dict[str, tf.Tensor]:
    """All loss terms and their weighted total.

    Args:
      predictions: model output dict; the auxiliary terms are added when it holds auxiliary predictions.
      targets: batched target dict on the target grid.
      loss_weights: the weight of each term (`loss_table`; None: the configured ones).
      auxiliary_weight: factor of the auxiliary heads' weighted sum.
      averaging: losses.AVERAGE_IMAGES (per-image means) or AVERAGE_POOLED.
      radius: R of the targets, which divides the offset errors.

    Returns:
      dict: LOSS_KEYS, AUXILIARY_PREFIX + LOSS_KEYS (if auxiliary predictions) and keys.Loss.TOTAL ->
      [] float32, each this replica's share (personlab_tf/losses.py).
    """
    table = loss_table(loss_weights, averaging, radius)
    losses = table_losses(table, predictions, targets)
    total = weighted_total(table, losses)
    prefix = keys.Prediction.AUXILIARY_PREFIX
    if prefix + keys.Prediction.HEATMAP_LOGITS in predictions:
        auxiliary = table_losses(table, predictions, targets, prefix)
        total += auxiliary_weight * weighted_total(table, auxiliary)
        losses.update({prefix + k: v for k, v in auxiliary.items()})
    losses[keys.Loss.TOTAL] = total
    return losses
