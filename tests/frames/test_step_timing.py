# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""A provenance step records when its transform began and how long it took."""

import datetime
import time

import numpy as np

from astrophot import MasterBias, RawFrame, calibrate_frame
from astrophot.provenance import start_step


def test_started_is_honoured_around_a_known_sleep():
    frame = RawFrame(np.zeros((4, 4), dtype=np.uint16))
    before = datetime.datetime.now(datetime.UTC)
    t0 = time.perf_counter()
    time.sleep(0.2)
    rec = start_step("test_step", inputs={"raw": frame}, started=t0)
    step = rec.step(output=frame)
    assert step.duration >= 0.2
    start = datetime.datetime.fromisoformat(step.start_time.replace("Z", "+00:00"))
    # the recorded start is the moment `started` refers to (before the sleep), not the recorder's creation
    assert abs((start - before).total_seconds()) < 0.05


def test_calibrate_frame_step_covers_the_call(monkeypatch):
    """The calibrate_frame step lasts as long as the call (here made slow by a sleep in its input read)."""
    raw = RawFrame(np.full((8, 8), 1100, dtype=np.uint16), meta={"GAIN": 2.0})
    bias = MasterBias(np.full((8, 8), 100.0, dtype=np.float32))
    real = RawFrame.checksum

    def slow_checksum(self):
        time.sleep(0.1)
        return real(self)

    monkeypatch.setattr(RawFrame, "checksum", slow_checksum)
    t0 = time.perf_counter()
    out = calibrate_frame(raw, bias=bias, read_noise=1.0)
    elapsed = time.perf_counter() - t0
    step = out.provenance.steps[-1]
    assert step.duration >= 0.1
    assert step.duration <= elapsed
