"""python-sjf: a shortest-job-first scheduler for infra, written in Python.

Built into a WebAssembly component with componentize-py against the `scheduler` world of
`wit/plugins.wit` (see README.md). componentize-py generates the `wit_world` package at build
time; this module provides the two classes it expects:

- `WitWorld`: the world's top-level exports `info` and `configure`;
- `Scheduling`: the exported `scheduling` interface.

Policy: pending tasks are taken by expected duration (`est_duration_ms`) ascending; ties go to
the higher `priority`, then to input order. Each task goes to the first node, in the order the
host gave them, whose free resources still fit its demand (CPU, memory and GPUs); the node's
free resources are then reduced by the demand. A task that fits nowhere is left out and stays
pending until the next decision.
"""

from typing import List, Tuple

from componentize_py_types import Err
from wit_world import WitWorld as _WitWorldProtocol
from wit_world.exports import Scheduling as _SchedulingProtocol
from wit_world.exports.scheduling import Assignment, Pending
from wit_world.imports.types import PluginInfo

NAME = "python-sjf"
VERSION = "0.3.0"
DESCRIPTION = "Shortest job first: shortest tasks first, each on the first node it fits (Python)"

# This scheduler has no settings; every key is unknown.
KNOWN_KEYS: Tuple[str, ...] = ()


class WitWorld(_WitWorldProtocol):
    def info(self) -> PluginInfo:
        return PluginInfo(name=NAME, version=VERSION, description=DESCRIPTION)

    def configure(self, config: List[Tuple[str, str]]) -> None:
        unknown = [key for key, _ in config if key not in KNOWN_KEYS]
        if unknown:
            raise Err(
                f"{NAME}: unknown config key(s): {', '.join(unknown)} (this scheduler takes no settings)"
            )


class Scheduling(_SchedulingProtocol):
    def schedule(self, pending: Pending) -> List[Assignment]:
        tasks, nodes = pending.tasks, pending.nodes
        # Free resources per node, in the host's order: [cpu_millis, memory_mib, gpus].
        free = [[n.free.cpu_millis, n.free.memory_mib, n.free.gpus] for n in nodes]

        # Stable order: shortest first, then higher priority, then input order.
        order = sorted(
            range(len(tasks)),
            key=lambda i: (tasks[i].est_duration_ms, -tasks[i].priority, i),
        )

        assignments: List[Assignment] = []
        for i in order:
            task = tasks[i]
            cpu = task.demand.cpu_millis
            mem = task.demand.memory_mib
            gpus = task.demand.gpus
            for n, slot in enumerate(free):
                if cpu <= slot[0] and mem <= slot[1] and gpus <= slot[2]:
                    slot[0] -= cpu
                    slot[1] -= mem
                    slot[2] -= gpus
                    # Tasks and nodes are named by their position in the two lists.
                    assignments.append(Assignment(task=i, node=n))
                    break
        return assignments
