# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Progress of a night: bars, log lines or nothing."""

import io
import logging

from astrophot.pipeline._progress import BarProgress, log_progress, make_progress, quiet


def test_bar_per_stage_counts_to_the_total():
    stream = io.StringIO()
    bars = BarProgress(stream=stream)
    for done in (1, 2, 3):
        bars("frames", done, 3)
    bars("stack", 1, 2)
    text = stream.getvalue()
    assert "frames" in text and "3/3" in text
    assert "stack" in text and "0/2" in text  # opened at its first report
    assert list(bars.bars) == ["stack"]  # finished stages are closed
    assert bars.bars["stack"].n == 1 and bars.bars["stack"].total == 2


def test_log_lines_first_last_and_about_ten(caplog):
    with caplog.at_level(logging.INFO, logger="astrophot.pipeline"):
        for done in range(1, 51):
            log_progress("frames", done, 50)
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "frames: 1/50" and lines[-1] == "frames: 50/50"
    assert len(lines) == 11  # 1, 5, 10, ..., 50


def test_choice_of_reporter():
    def mine(stage, done, total):
        pass

    assert make_progress(mine, "none") is mine  # a callable wins
    assert make_progress(False, "bar") is quiet
    assert make_progress(None, "none") is quiet
    assert make_progress(None, "log") is log_progress
    assert isinstance(make_progress(None, "bar"), BarProgress)
    # not a terminal (pytest captures stderr): log lines
    assert make_progress(None, "auto") is log_progress
