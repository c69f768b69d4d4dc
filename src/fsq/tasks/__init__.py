"""UViM dense prediction tasks: depth, colorization and panoptic segmentation behind one protocol.

``get_task("depth", bins=64)`` gives a task object; see ``fsq.tasks.base`` for the protocol and each module for
its encoding, loss, decoding, metrics and baseline.
"""

from fsq.tasks.base import Task, get_task, task_names
from fsq.tasks.colorization import ColorizationTask
from fsq.tasks.depth import DepthTask
from fsq.tasks.panoptic import PanopticTask

__all__ = ["ColorizationTask", "DepthTask", "PanopticTask", "Task", "get_task", "task_names"]
