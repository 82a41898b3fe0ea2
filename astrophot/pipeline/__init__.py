# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Running the pipeline over many frames: the demo (and, later, the night runner)."""

from astrophot.pipeline.demo import DemoResult, run_demo

__all__ = ["DemoResult", "run_demo"]
