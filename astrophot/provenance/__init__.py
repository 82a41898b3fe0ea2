# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Provenance: frozen records of how every frame was made."""

from astrophot.provenance._capture import start_step, yaml_safe
from astrophot.provenance._records import Ancestor, FrameReference, ProcessingStep, Provenance

__all__ = ["Ancestor", "FrameReference", "ProcessingStep", "Provenance", "start_step", "yaml_safe"]
