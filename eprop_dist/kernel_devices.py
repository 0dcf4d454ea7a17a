"""Kernel mixin: recording devices (connecting recorders, their events before the build)."""
from __future__ import annotations

import numpy as np

from .errors import IllegalConnection
from .kernel_connect import ConnBlock


class DevicesMixin:
    def _recorder_events(self, gid, pop, status):
        """Events of recorder `gid` (before the build: empty arrays of the right fields)."""
        return self._sim.events(gid) if self._sim is not None else _empty_events(pop, status)

    def _connect_recorder(self, pre_g, post_g, pre_kinds, post_kinds):
        if pre_kinds == {"multimeter"}:
            if post_kinds - {"rec", "readout"}:
                raise IllegalConnection(f"multimeter: can record from e-prop neurons and readouts, not {sorted(post_kinds)}")
            rule_kind = "multimeter"
        elif post_kinds == {"spike_recorder"}:
            if pre_kinds - {"rec", "parrot"}:
                raise IllegalConnection(f"spike_recorder: can record spikes of neurons, not {sorted(pre_kinds)}")
            rule_kind = "spike_recorder"
        else:
            raise IllegalConnection("Connect: cannot mix recorders with other nodes in one call")
        src = np.repeat(pre_g, post_g.size)
        tgt = np.tile(post_g, pre_g.size)
        self.blocks.append(ConnBlock(len(self.blocks), rule_kind, "record", "explicit", src, tgt, 0.0, 1))


def _empty_events(pop, d):
    if pop.kind == "multimeter":
        ev = {"senders": np.zeros(0, np.int64), "times": np.zeros(0)}
        for r in d.get("record_from", []):
            ev[r] = np.zeros(0)
        return ev
    if pop.kind == "weight_recorder":
        return {"senders": np.zeros(0, np.int64), "targets": np.zeros(0, np.int64),
                "times": np.zeros(0), "weights": np.zeros(0)}
    return {"senders": np.zeros(0, np.int64), "times": np.zeros(0)}

