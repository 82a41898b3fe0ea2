# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Progress of a night: one bar per stage on a terminal (tqdm), plain log lines
otherwise, or nothing (quiet).

A reporter is any callable ``progress(stage, done, total)``; `make_progress`
picks one from the ``execution.progress`` option.
"""

import logging
import sys

__all__ = ["BarProgress", "log_progress", "make_progress"]

log = logging.getLogger("astrophot.pipeline")


def log_progress(stage, done, total):
    """Log ``stage: done/total`` about ten times per stage (always the first and the last)."""
    if done in (1, total) or done % max(1, total // 10) == 0:
        log.info("%s: %d/%d", stage, done, total)


def quiet(stage, done, total):
    """Report nothing."""


class BarProgress:
    """
    One tqdm bar per stage, opened at the stage's first report and closed at
    its last (``done == total``). The log file still gets every stage's last line.
    """

    def __init__(self, stream=None):
        self.stream = stream if stream is not None else sys.stderr
        self.bars = {}

    def __call__(self, stage, done, total):
        from tqdm import tqdm

        bar = self.bars.get(stage)
        if bar is None:
            bar = self.bars[stage] = tqdm(
                total=total,
                desc=f"{stage:<10}",
                unit="item",
                file=self.stream,
                leave=True,
                dynamic_ncols=True,
            )
        bar.total = total
        bar.update(done - bar.n)
        if done >= total:
            bar.close()
            del self.bars[stage]
            log.debug("%s: %d/%d", stage, done, total)


def _have_tqdm():
    try:
        import tqdm  # noqa: F401
    except ImportError:
        return False
    return True


def make_progress(progress, mode):
    """
    The reporter for ``process_night(progress=...)``.

    Parameters
    ----------
    progress : callable, bool or None
        A callable is used as it is; False is quiet; None (or True) follows ``mode``.
    mode : str
        ``execution.progress``: ``'auto'`` (bars when standard error is a
        terminal and tqdm is installed, log lines otherwise), ``'bar'``,
        ``'log'`` or ``'none'``.

    Returns
    -------
    callable
    """
    if callable(progress):
        return progress
    if progress is False or mode == "none":
        return quiet
    if mode == "bar" or (mode == "auto" and sys.stderr.isatty()):
        if _have_tqdm():
            return BarProgress()
        log.debug("tqdm is not installed: progress as log lines")
    return log_progress
