# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Is a product on disk complete and made from these inputs by this function and version?"""

import logging
import warnings
from pathlib import Path

from astropy.io import fits

__all__ = ["is_up_to_date", "up_to_date_reason"]

log = logging.getLogger(__name__)

#: Pixel checksums of input files, by (path, mtime, size): a batch compares every output with the same masters.
_CHECKSUMS = {}


def _input_checksum(item):
    """sha256 of an input given as a frame, a FrameReference, a checksum string or a path."""
    from astrophot.provenance import FrameReference

    if isinstance(item, FrameReference):
        return item.sha256
    if hasattr(item, "checksum") and hasattr(item, "provenance"):
        return item.checksum()
    if isinstance(item, str) and len(item) == 64 and all(c in "0123456789abcdef" for c in item):
        return item
    path = Path(item)
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _CHECKSUMS:
        from astrophot.io._fits import read_frame

        if len(_CHECKSUMS) > 256:
            _CHECKSUMS.clear()
        _CHECKSUMS[key] = read_frame(path).checksum()
    return _CHECKSUMS[key]


def _same_parameters(recorded, wanted):
    from astrophot.provenance._capture import yaml_safe
    from astrophot.provenance._records import _freeze

    wanted = _freeze(yaml_safe(dict(wanted)))
    for key, value in wanted.items():
        if key not in recorded:
            return f"parameter {key!r} was not recorded"
        if recorded[key] != value:
            return f"parameter {key!r} was {recorded[key]!r}, now {value!r}"
    return None


def _read_product(path):
    from astrophot.io._fits import read_frame

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        header = fits.getheader(path, 0)
        if "APPROVID" not in header:
            return None, "not an astrophot product (no APPROVID card)"
        frame = read_frame(path)
    if not frame.provenance.steps:
        return None, "its sidecar records no processing step"
    return frame, None


def _check_step(step, function, parameters, version):
    from astrophot import __version__

    if function is not None:
        name = function if function.startswith("astrophot.") else f"astrophot.{function}"
        if step.function != name:
            return f"made by {step.function}, not {name}"
    if version:
        made = step.software.get("astrophot")
        if made != __version__:
            return f"made by astrophot {made}, this is {__version__}"
    if parameters is not None:
        return _same_parameters(step.parameters, parameters)
    return None


def _check_inputs(steps, inputs):
    if inputs is None:
        return None
    recorded = {ref.sha256 for step in steps for ref in step.inputs}
    for item in inputs:
        if _input_checksum(item) not in recorded:
            return f"it was not made from {getattr(item, 'name', item)} (no recorded input has its checksum)"
    return None


def _check_steps(steps, function, parameters, inputs, version):
    """Compare the last step (``function`` a name) or the last steps (a sequence of names, in order)."""
    if function is None or isinstance(function, str):
        functions, parameters = [function], [parameters]
    else:
        functions = list(function)
        if parameters is None or isinstance(parameters, dict):
            parameters = [None] * (len(functions) - 1) + [parameters]
        if len(parameters) != len(functions):
            raise ValueError(f"{len(functions)} functions but {len(parameters)} sets of parameters")
    if len(steps) < len(functions):
        return f"it records {len(steps)} processing step(s), not the {len(functions)} expected"
    tail = steps[len(steps) - len(functions) :]
    for step, name, params in zip(tail, functions, parameters):
        reason = _check_step(step, name, params, version)
        if reason:
            return reason
    return _check_inputs(tail, inputs)


def provenance_reason(provenance, inputs=None, *, function=None, parameters=None, version=True):
    """
    Why a provenance record does not show these inputs, function(s), parameters
    and version, or None.

    The comparison of `up_to_date_reason` on a record alone: for products
    that are not frames (a colour picture and its sidecar), where the caller
    checks that the files are complete.
    """
    try:
        return _check_steps(list(provenance.steps), function, parameters, inputs, version)
    except OSError as exc:
        return f"an input is unreadable ({exc})"


def up_to_date_reason(path, inputs=None, *, function=None, parameters=None, version=True, verify_data=True):
    """
    Why the product at ``path`` is not complete and up to date, or None if it is.

    Same parameters as `is_up_to_date`.

    Returns
    -------
    str or None
        A short reason (``"missing"``, ``"made by astrophot.calibrate_frame 0.1, this is 0.2"``,
        ``"its pixels changed since they were written"``, ...), or None.
    """
    path = Path(path)
    if not path.exists():
        return "missing"
    try:
        frame, reason = _read_product(path)
    except Exception as exc:  # unreadable, partial pair, foreign sidecar: not complete
        return f"unreadable ({exc})"
    if reason:
        return reason
    step = frame.provenance.last
    try:
        reason = _check_steps(list(frame.provenance.steps), function, parameters, inputs, version)
    except OSError as exc:  # an input that cannot be read: the product cannot be shown to be up to date
        return f"an input is unreadable ({exc})"
    if reason:
        return reason
    frame._recorded_checksum = None  # the comparison is made here, with its reason: no warning as well
    if verify_data and step.output is not None and step.output.sha256 != frame.checksum():
        return "its pixels changed since they were written (sha256 differs from its provenance)"
    return None


def is_up_to_date(path, inputs=None, *, function=None, parameters=None, version=True, verify_data=True):
    """
    True if the product at ``path`` is complete and was made from ``inputs`` the same way.

    "Complete" means the FITS file and its provenance sidecar are readable
    and belong together (the pair `~astrophot.write_frame` publishes), and
    the last processing step's recorded output checksum matches the pixels.
    A batch uses it to skip outputs of an earlier run instead of stopping at
    "already exists".

    Parameters
    ----------
    path : str or path-like
        The product (``name.fits``; its sidecar is found through its header).
    inputs : iterable, optional
        (May be given positionally.) The inputs of the step that made it, each a frame, a
        `~astrophot.provenance.FrameReference`, a sha256 hex string or a path
        (read to get its pixel checksum). Each must be among the last
        step's recorded inputs (any role: raw, bias, dark, ...); inputs the
        caller did not know (masters a library chose) are not required.
        ``None`` skips the comparison.
    function : str or sequence of str, optional
        The public name of the transform (``"calibrate_frame"`` or
        ``"astrophot.calibrate_frame"``). ``None`` skips the comparison.
        A sequence names the last steps in order (a chain such as
        ``["calibrate_frame", "fix_bad_pixels"]``): each must match, and
        ``inputs`` are then looked for among the inputs of all of them.
    parameters : dict or sequence of dict, optional
        Parameters that must equal the recorded ones (compared after the
        same YAML-safe conversion the provenance uses; only the keys given
        are compared). ``None`` skips the comparison. With a chain of
        functions: one dict (or None) per function, or one dict for the last.
    version : bool, optional
        Require the step to have been made by this astrophot version (default True).
    verify_data : bool, optional
        Recompute the pixels' sha256 and compare it with the recorded output
        (default True; costs one pass over the data).

    Returns
    -------
    bool
        False also when the file is missing, unreadable or half written;
        `up_to_date_reason` says why (the reason is logged at DEBUG level).

    Examples
    --------
    >>> import numpy as np
    >>> from astrophot import image_arithmetic, write_frame
    >>> from astrophot.datasets import make_raw_frame
    >>> from astrophot.io import is_up_to_date
    >>> raw, _ = make_raw_frame(shape=(20, 30), seed=1)
    >>> product = image_arithmetic(raw, "+", 1.0)
    >>> path = write_frame(product, getfixture("tmp_path") / "plus1.fits")
    >>> is_up_to_date(path, inputs=[raw], function="image_arithmetic")
    True
    >>> is_up_to_date(path, inputs=[raw], function="calibrate_frame")
    False
    >>> twice = image_arithmetic(product, "*", 2.0)
    >>> path = write_frame(twice, getfixture("tmp_path") / "twice.fits")
    >>> is_up_to_date(path, inputs=[raw], function=["image_arithmetic", "image_arithmetic"])
    True
    >>> is_up_to_date(path, inputs=[raw], function="image_arithmetic")  # raw is not the last step's input
    False
    """
    reason = up_to_date_reason(
        path,
        inputs=inputs,
        function=function,
        parameters=parameters,
        version=version,
        verify_data=verify_data,
    )
    if reason is not None:
        log.debug("%s: not up to date: %s", path, reason)
    return reason is None
