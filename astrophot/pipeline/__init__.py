# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Running the pipeline over a night: `process_night` (the night runner), its
configuration and plan, and the demo.
"""

from astrophot.pipeline._config import DEFAULT_CONFIG_TEXT, ConfigError, default_config, load_config
from astrophot.pipeline._night import NightResult, plan_night, process_night
from astrophot.pipeline._plan import NightPlan
from astrophot.pipeline._state import OutputLockedError
from astrophot.pipeline.demo import DemoCheck, DemoResult, run_demo

__all__ = [
    "DEFAULT_CONFIG_TEXT",
    "ConfigError",
    "DemoCheck",
    "DemoResult",
    "NightPlan",
    "NightResult",
    "OutputLockedError",
    "default_config",
    "load_config",
    "plan_night",
    "process_night",
    "run_demo",
]
