"""The optimizer of every task, with Polyak averaging of the weights (PersonLab §4.1)."""

from typing import Optional, Union

import gin
import keras

OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "cosine")

gin.external_configurable(keras.optimizers.schedules.PiecewiseConstantDecay, module="schedules")


@gin.configurable
def build_optimizer(learning_rate: Union[float, keras.optimizers.schedules.LearningRateSchedule] = 1e-3,
                    momentum: float = 0.9, ema_momentum: float = 0.9999, name: str = "sgd",
                    schedule: str = "constant", num_steps: Optional[int] = None,
                    weight_decay: Optional[float] = None) -> keras.optimizers.Optimizer:
    """The optimizer, with Polyak averaging of the weights (EMA).

    name "sgd" is the paper's (§4.1: momentum 0.9, constant learning rate 1e-3); "adam" (momentum unused)
    trains a small network from scratch in far fewer steps, for the demo. schedule "constant" is the
    paper's; "cosine" decays `learning_rate` to 0 over `num_steps` (the trainer passes its total), which
    a run of a few thousand steps needs to settle. `num_steps` None is for restoring weights only (export,
    evaluation): the optimizer has the same variables, so a checkpoint restores, but its rate is not meant
    for training. `fit` ends by writing the averaged weights into the model (`finalize_variable_values`);
    a custom loop must do it (or swap with keras.callbacks.SwapEMAWeights) before evaluation or export.
    `weight_decay`: Keras' decoupled decay per step (None: none, as PersonLab; the part parser's 1e-5).

    Raises:
      ValueError: an unknown `name` or `schedule` (the message lists the valid ones).
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"unknown learning rate schedule {schedule!r}; expected one of {', '.join(SCHEDULES)}")
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; expected one of {', '.join(OPTIMIZERS)}")
    if schedule == "cosine" and not isinstance(learning_rate, (int, float)):
        raise ValueError("schedule 'cosine' decays a constant learning_rate; got a schedule already")
    if schedule == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(learning_rate, num_steps or 1)
    if name == "sgd":
        return keras.optimizers.SGD(learning_rate, momentum=momentum, weight_decay=weight_decay, use_ema=True,
                                    ema_momentum=ema_momentum)
    return keras.optimizers.Adam(learning_rate, weight_decay=weight_decay, use_ema=True, ema_momentum=ema_momentum)
