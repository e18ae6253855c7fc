"""The core's task plumbing (personlab_tf/task.py): one configuration object per task, built from option fields,
recorded, restored and overridden the same way for both tasks."""

import dataclasses
import json

import pytest

from personlab_tf import registry, skeleton
from personlab_tf.skeleton import COCO17, Skeleton
from personlab_tf.data.augment import BoxOptions
from personlab_tf.task import TaskOptions
from personlab_tf.tasks.parts.task import PartsTask
from personlab_tf.tasks.personlab.model import PersonLabNetwork
from personlab_tf.tasks.personlab.targets import PersonLabData
from personlab_tf.tasks.personlab.task import PersonLabTask


@pytest.mark.parametrize("task_class", sorted(registry.TASKS.values(), key=lambda cls: cls.name))
def test_every_task_records_and_restores_its_options_through_json(task_class):
    task = task_class(box=BoxOptions(min_scale=0.25), skeleton=skeleton.MHP_V2)
    config = json.loads(json.dumps(task.config()))
    assert config["box"]["min_scale"] == 0.25 and config["skeleton"]["name"] == "mhp_v2"
    restored = task_class.from_config(config)
    assert restored.options == task.options and restored.skeleton is not task.skeleton
    del config["color"]                          # an option recorded after this record was written: its default
    assert task_class.from_config(config).options.color == task_class().options.color


def test_options_are_checked_and_overridden_in_one_place():
    task = PersonLabTask(data=PersonLabData(crop_size=65))
    with pytest.raises(ValueError, match="netwrok: not options of the personlab task"):
        PersonLabTask(netwrok=PersonLabNetwork())
    with pytest.raises(ValueError, match="crop size 73 - 1 must be a multiple of the output stride 16"):
        PersonLabTask(data=PersonLabData(crop_size=73))
    served = task.with_inference(max_side=513, decode_stride=8)
    assert (served.options.inference.max_side, served.options.inference.decode_stride) == (513, 8)
    assert served.options.data is task.options.data and task.options.inference.max_side == 1401
    with pytest.raises(ValueError, match="multi_scale does not apply to the parts task"):
        PartsTask().with_inference(multi_scale=True)
    raw = task.replace(network=PersonLabNetwork(refine_mid_steps=0))
    assert raw.options.network.refine_mid_steps == 0 and raw.options.data is task.options.data


def test_a_task_whose_options_lack_what_the_core_reads_is_refused():
    @dataclasses.dataclass(frozen=True)
    class Bare(TaskOptions):
        skeleton: Skeleton = COCO17

    with pytest.raises(TypeError, match="Bare lacks inference"):
        type("BareTask", (PersonLabTask,), {"options_class": Bare})
