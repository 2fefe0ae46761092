"""python-server-lr: FedAvg with a server learning rate, an aggregator written in Python.

Built into a WebAssembly component with componentize-py against the `aggregator` world of
`wit/plugins.wit` (see README.md). componentize-py generates the `wit_world` package at build
time; this module provides the two classes it expects:

- `WitWorld`: the world's top-level exports `info` and `configure`;
- `Aggregation`: the exported `aggregation` interface.

Rule: with `n_k` the samples behind update k and `n` their sum (equal weights when every
count is zero), and `lr` the config key `server-lr` (default 1.0, plain FedAvg):

    new = (1 - lr) * global + lr * sum over k of (n_k / n) * update_k

The rule is a weighted sum, so `plan_merge` answers with its weights and the host forms the
sum natively: Python decides the policy, no coordinate passes through the interpreter.
`combine_chunk` computes the same values in Python, rounding to f32 after every operation as
the host does (a product or sum of two f32 values computed in double precision and rounded
to f32 is the f32 result), for a host that streams the chunks anyway.
"""

import math
import struct
from typing import List, Tuple

from componentize_py_types import Err
from wit_world import WitWorld as _WitWorldProtocol
from wit_world.exports import Aggregation as _AggregationProtocol
from wit_world.exports.aggregation import (
    MergePlan,
    MergePlan_WeightedSum,
    RoundInfo,
    SumWeights,
)
from wit_world.imports.types import PluginInfo

NAME = "python-server-lr"
VERSION = "0.1.0"
DESCRIPTION = "FedAvg with a server learning rate `server-lr` (Python)"

# The plugin's state lives in the module: the instance serves every call of its life.
server_lr = 1.0
weights: List[float] = []
summary = ""


def f32(x: float) -> float:
    """`x` rounded to the nearest f32."""
    return struct.unpack("f", struct.pack("f", x))[0]


class WitWorld(_WitWorldProtocol):
    def info(self) -> PluginInfo:
        return PluginInfo(name=NAME, version=VERSION, description=DESCRIPTION)

    def configure(self, config: List[Tuple[str, str]]) -> None:
        global server_lr
        lr = 1.0
        for key, value in config:
            if key != "server-lr":
                raise Err(f"{NAME}: unknown config key `{key}` (known: server-lr)")
            try:
                lr = float(value)
            except ValueError:
                raise Err(f"{NAME}: config key `server-lr`: `{value}` is not a number")
            if not (math.isfinite(lr) and 0.0 < lr <= 1.0):
                raise Err(f"{NAME}: config key `server-lr`: {value} is not in (0, 1]")
        server_lr = lr


class Aggregation(_AggregationProtocol):
    def begin_round(self, info: RoundInfo) -> bool:
        global weights, summary
        if not info.updates:
            raise Err(f"{NAME}: a round needs at least one update")
        total = sum(u.samples for u in info.updates)
        n = len(info.updates)
        weights = [
            f32(server_lr * (u.samples / total if total else 1.0 / n)) for u in info.updates
        ]
        summary = f"{NAME}: {n} updates, {total} samples, server-lr {server_lr}"
        return False

    def plan_merge(self) -> MergePlan:
        return MergePlan_WeightedSum(SumWeights(global_=f32(1.0 - server_lr), updates=weights))

    def scan_chunk(self, offset: int, updates: List[List[float]]) -> None:
        pass

    def combine_chunk(
        self, offset: int, global_: List[float], updates: List[List[float]]
    ) -> List[float]:
        g = f32(1.0 - server_lr)
        out = [f32(g * x) for x in global_] if g != 0.0 else [0.0] * len(global_)
        for w, update in zip(weights, updates):
            if w == 0.0:
                continue
            for i, x in enumerate(update):
                out[i] = f32(out[i] + f32(w * x))
        return out

    def end_round(self) -> str:
        return summary
