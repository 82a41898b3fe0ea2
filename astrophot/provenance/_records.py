# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Frozen provenance records."""

import uuid
from dataclasses import dataclass, field, replace
from pathlib import Path

__all__ = ["Ancestor", "FrameReference", "ProcessingStep", "Provenance"]


def _freeze(value):
    """Make a YAML-safe parameter structure immutable (dicts stay dicts)."""
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, dict):
        return {str(k): _freeze(v) for k, v in value.items()}
    return value


@dataclass(frozen=True)
class FrameReference:
    """
    A reference to a frame: the checksum of its pixels and where it lives.

    Parameters
    ----------
    sha256 : str
        sha256 hex digest of the pixel data (`astrophot.frames.data_checksum`).
    frame_type : str
        Class name of the frame (``RawFrame``, ``MasterDark`` ...).
    path : str, optional
        The file it was read from or written to, when known.
    role : str, optional
        The role of the input in a step (``raw``, ``bias``, ``dark`` ...).
    provenance_id : str, optional
        The id of the frame's own provenance record.
    """

    sha256: str
    frame_type: str
    path: str | None = None
    role: str | None = None
    provenance_id: str | None = None


@dataclass(frozen=True)
class ProcessingStep:
    """
    One application of a transform.

    Parameters
    ----------
    function : str
        Public name of the function (``astrophot.calibrate_frame``).
    parameters : dict
        Its keyword parameters, YAML-safe (arrays summarised, frames referenced).
    inputs : tuple of `FrameReference`
        The frames it read.
    output : `FrameReference`, optional
        The frame it produced.
    outcome : dict
        Small, YAML-safe results (counts, measured values, warnings).
    start_time : str
        ISO 8601 UTC time the step started.
    duration : float
        Seconds the step took.
    software : dict
        Versions of astrophot and the libraries the step used.
    """

    function: str
    parameters: dict = field(default_factory=dict)
    inputs: tuple = ()
    output: FrameReference | None = None
    outcome: dict = field(default_factory=dict)
    start_time: str = ""
    duration: float = 0.0
    software: dict = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "parameters", _freeze(dict(self.parameters)))
        object.__setattr__(self, "outcome", _freeze(dict(self.outcome)))
        object.__setattr__(self, "inputs", tuple(self.inputs))
        object.__setattr__(self, "software", {str(k): str(v) for k, v in dict(self.software).items()})


@dataclass(frozen=True)
class Ancestor:
    """An input found while walking provenance: its reference, depth and record."""

    reference: FrameReference
    depth: int
    provenance: "Provenance | None"


@dataclass(frozen=True)
class Provenance:
    """
    The processing history of a frame: an id and a chain of steps.

    The last step produced the frame; earlier steps produced its primary
    input, and so on. Other inputs (masters, ...) are referenced by checksum
    and path; `ancestors` follows them through their sidecar files.

    Parameters
    ----------
    id : str
        Unique id, shared by the FITS header (``APPROVID``) and the sidecar.
    steps : tuple of `ProcessingStep`
    """

    id: str
    steps: tuple = ()

    def __post_init__(self):
        object.__setattr__(self, "steps", tuple(self.steps))

    @classmethod
    def new(cls, steps=()):
        """A record with a fresh id."""
        return cls(id=uuid.uuid4().hex, steps=tuple(steps))

    def with_step(self, step):
        """A new record (new id) with ``step`` appended."""
        return replace(self, id=uuid.uuid4().hex, steps=(*self.steps, step))

    @property
    def last(self):
        """The last step, or None."""
        return self.steps[-1] if self.steps else None

    def ancestors(self, *, max_depth=20):
        """
        Walk every referenced input, through their sidecars where they exist.

        Parameters
        ----------
        max_depth : int, optional
            Stop after this many generations.

        Returns
        -------
        list of `Ancestor`
            Breadth-first, each input once (by checksum); ``provenance`` is the
            input's own record when its sidecar was found, else None.
        """
        from astrophot.io._sidecar import read_sidecar_for

        seen = set()
        result = []
        frontier = [(ref, 1) for step in self.steps for ref in step.inputs]
        while frontier:
            ref, depth = frontier.pop(0)
            key = (ref.sha256, ref.role)
            if ref.sha256 in {r.reference.sha256 for r in result} or key in seen:
                continue
            seen.add(key)
            prov = None
            if ref.path:
                prov = read_sidecar_for(Path(ref.path), missing_ok=True)
            result.append(Ancestor(reference=ref, depth=depth, provenance=prov))
            if prov is not None and depth < max_depth:
                frontier.extend((r, depth + 1) for step in prov.steps for r in step.inputs)
        return result
