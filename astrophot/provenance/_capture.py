# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The private helper every transform uses to record its provenance step."""

import datetime
import functools
import importlib.metadata
import math
import time
from pathlib import PurePath

import numpy as np

from astrophot.provenance._records import FrameReference, ProcessingStep, Provenance

__all__ = ["REDACTED", "StepRecorder", "software_versions", "start_step", "yaml_safe"]

#: Replaces the value of any parameter that looks like a secret.
REDACTED = "<redacted>"
_SECRET_WORDS = ("api_key", "apikey", "password", "secret", "token")


def _is_secret(name):
    name = str(name).lower()
    return any(word in name for word in _SECRET_WORDS)


_UNCONVERTED = object()


def _scalar(value):
    """YAML-safe form of a plain Python or numpy scalar, or ``_UNCONVERTED``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return value if math.isfinite(value) else str(value)
    if isinstance(value, PurePath):
        return str(value)
    return _UNCONVERTED


def _astropy_object(value):
    """YAML-safe summary of a Quantity, Time, SkyCoord, frame or array, or ``_UNCONVERTED``."""
    from astropy.coordinates import SkyCoord
    from astropy.time import Time
    from astropy.units import Quantity

    if isinstance(value, Quantity):
        if value.isscalar:
            number = value.value.item() if hasattr(value.value, "item") else value.value
            return f"{number!r} {value.unit.to_string()}".strip()
        return f"Quantity array shape={value.shape} unit={value.unit.to_string()}"
    if isinstance(value, Time):
        return value.isot if value.isscalar else f"Time array shape={value.shape}"
    if isinstance(value, SkyCoord):
        if value.isscalar:
            return value.to_string("hmsdms", precision=2)
        return f"SkyCoord array shape={value.shape}"
    if hasattr(value, "reference") and hasattr(value, "provenance"):
        ref = value.reference()
        return {"frame_type": ref.frame_type, "sha256": ref.sha256, "path": ref.path}
    if isinstance(value, np.ndarray):
        return f"ndarray shape={value.shape} dtype={value.dtype}"
    return _UNCONVERTED


def yaml_safe(value, _depth=0):
    """
    Convert a parameter value to a YAML-safe structure.

    Numbers, strings, booleans and None pass; `~astropy.units.Quantity`
    becomes ``"<value> <unit>"``; arrays are summarised by shape and dtype;
    frames become `FrameReference`-like dicts; paths become strings;
    dicts and sequences are converted recursively; anything else is its
    ``repr``. Keys that look like secrets (``api_key``, ``password``, ...)
    are redacted.
    """
    if _depth > 6:
        return repr(value)
    for convert in (_scalar, _astropy_object):
        converted = convert(value)
        if converted is not _UNCONVERTED:
            return converted
    if isinstance(value, dict):
        return {str(k): (REDACTED if _is_secret(k) else yaml_safe(v, _depth + 1)) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
        if len(items) > 100:
            return f"{type(value).__name__} of {len(items)} items"
        return [yaml_safe(v, _depth + 1) for v in items]
    if hasattr(value, "name") and hasattr(value, "value") and hasattr(type(value), "__members__"):
        return str(value.name)  # enum members
    return repr(value)


@functools.cache
def _version(dist):
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def software_versions(*extra):
    """Versions of astrophot, astropy, numpy and the named extra distributions."""
    from astrophot import __version__

    versions = {"astrophot": __version__, "astropy": _version("astropy"), "numpy": _version("numpy")}
    for name in extra:
        versions[name] = _version(name)
    return versions


def _references(role, value):
    if value is None:
        return []
    if isinstance(value, FrameReference):
        return [value]
    if hasattr(value, "reference") and hasattr(value, "provenance"):
        return [value.reference(role)]
    if isinstance(value, (list, tuple)):
        refs = []
        for item in value:
            refs.extend(_references(role, item))
        return refs
    return []


class StepRecorder:
    """
    Records one provenance step; created by `start_step` inside a transform.

    Parameters
    ----------
    function : str
        Public name of the transform.
    parameters : dict, optional
        Its options (converted with `yaml_safe`; secrets redacted).
    inputs : dict, optional
        Role name to frame, list of frames, or `FrameReference`.
    software : sequence of str, optional
        Extra distributions whose versions to record.
    started : float, optional
        ``time.perf_counter()`` when the transform began, when the recorder
        is created late (after work that needed the inputs' checksums).
    """

    def __init__(self, function, *, parameters=None, inputs=None, software=(), started=None):
        if not function.startswith("astrophot."):
            function = f"astrophot.{function}"
        self.function = function
        self.parameters = yaml_safe(dict(parameters or {}))
        self.inputs = []
        for role, value in (inputs or {}).items():
            self.inputs.extend(_references(role, value))
        self.software = software_versions(*software)
        now = time.perf_counter()
        self._t0 = now if started is None else float(started)
        # the wall-clock start is the moment `started` refers to, not when the recorder was made
        self.start_time = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=now - self._t0)
        self.outcome = {}

    def step(self, *, output=None, outcome=None):
        """Return the `ProcessingStep` (``output`` a frame or `FrameReference`)."""
        merged = dict(self.outcome)
        merged.update(outcome or {})
        if output is not None and not isinstance(output, FrameReference):
            output = FrameReference(sha256=output.checksum(), frame_type=output.frame_type)
        return ProcessingStep(
            function=self.function,
            parameters=self.parameters,
            inputs=tuple(self.inputs),
            output=output,
            outcome=yaml_safe(merged),
            start_time=self.start_time.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            duration=round(time.perf_counter() - self._t0, 6),
            software=self.software,
        )

    def finish(self, frame, *, primary=None, outcome=None):
        """
        Attach the step to ``frame`` and return it.

        Parameters
        ----------
        frame : `~astrophot.frames.FrameBase`
            The new frame the transform built.
        primary : `~astrophot.frames.FrameBase`, optional
            The input whose history continues (a calibrated frame continues its
            raw frame's chain). Without it the chain starts here.
        outcome : dict, optional
            Small results to record.
        """
        if (
            primary is not None
            and getattr(frame, "_checksum", False) is None
            and getattr(primary, "_checksum", None) is not None
            and frame.data is primary.data
        ):
            # a header-only step shares its input's pixels: their checksum is not taken again
            frame._checksum = primary._checksum
        step = self.step(output=frame, outcome=outcome)
        base = primary.provenance.steps if primary is not None else ()
        frame.provenance = Provenance.new((*base, step))
        return frame


def start_step(function, *, parameters=None, inputs=None, software=(), started=None):
    """Begin recording a step: see ``StepRecorder`` (the object returned)."""
    return StepRecorder(function, parameters=parameters, inputs=inputs, software=software, started=started)
