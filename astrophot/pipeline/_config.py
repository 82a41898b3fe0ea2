# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The night runner's configuration: defaults, one YAML file, ``--set`` overrides.

Precedence is command line (``--set stage.option=value``) > file > defaults.
Every key is validated; an error names the key, the file line and what is
allowed.
"""

import copy
from pathlib import Path

import yaml

from astrophot.combination._core import KERNELS
from astrophot.combination._normalize import NORMALIZATIONS, WEIGHTINGS
from astrophot.combination._reject import REJECTIONS
from astrophot.exceptions import AstrophotError

__all__ = ["DEFAULT_CONFIG_TEXT", "ConfigError", "default_config", "load_config"]


class ConfigError(AstrophotError, ValueError):
    """A configuration file or override that cannot be used."""


#: The defaults, commented: ``astrophot run --print-config`` writes this text.
DEFAULT_CONFIG_TEXT = """\
# astrophot night-runner configuration (astrophot run --config FILE).
# Precedence: --set stage.option=value > this file > the defaults shown here.
# Every stage has `enabled`; a disabled stage is skipped and reported as such.

calibrate:
  enabled: true
  # build masters from raw bias/dark/flat frames found in the night when the
  # library has none that fit (true), or report such lights as uncalibrated (false)
  build_masters: true
  unit: electron             # electron or adu

fix_bad_pixels:
  enabled: true

cosmic_rays:
  enabled: true

metadata:
  enabled: true

stars:
  enabled: true              # star finding and the quality record of each frame

solve:
  enabled: true
  backend: auto              # auto, catalog, astrometry.net, web
  time_limit: 60.0           # seconds per frame

select:
  enabled: true              # reject frames by the quality rules (analysis.select_frames)

grid:
  enabled: true              # one output grid per target over all filters (find_optimal_wcs)

stack:                       # one stack per target and filter (stack_frames), on the target's grid
  enabled: true
  rejection: auto            # none, minmax, percentile, sigma, mad, winsorized, linear_fit, gesd, auto
  sigma: 3.0                 # rejection limit in standard deviations
  normalize: additive_scale  # additive_scale, additive, multiplicative, none
  weights: noise             # noise, psf, exptime, none
  kernel: lanczos3           # resampling kernel: lanczos3, lanczos2, bilinear, nearest
  center: mean               # mean or median of the kept values

mosaic:                      # when a target's frames are on several pointings: one mosaic per filter
  enabled: true              # (make_mosaic on the target's grid) instead of the stacks
  match_background: plane    # plane, offset or none: each frame's background correction
  rejection: auto            # as stack: where enough frames overlap
  sigma: 3.0
  weights: noise             # noise, exptime, none
  kernel: lanczos3
  center: mean

continuum:
  enabled: true
  narrow: Ha                 # the narrow-band filter
  broad: Red                 # its continuum filter

color:
  enabled: true
  red: Ha                    # filters for the red, green and blue channels
  green: Red
  blue: V
  formats: [png, tiff]

report:
  enabled: true
  thumbnail_size: 200        # pixels

execution:
  workers: 0                 # Dask workers of a local cluster; 0 runs in this process
  scheduler: null            # address of an existing dask.distributed scheduler
  progress: auto             # auto (bars on a terminal, log lines otherwise), bar, log, none
"""

_CHOICES = {
    ("calibrate", "unit"): ("electron", "adu"),
    ("solve", "backend"): ("auto", "catalog", "astrometry.net", "web"),
    ("stack", "rejection"): REJECTIONS,
    ("stack", "normalize"): NORMALIZATIONS,
    ("stack", "weights"): tuple(w for w in WEIGHTINGS if w != "quality"),  # quality needs the table
    ("stack", "center"): ("mean", "median"),
    ("stack", "kernel"): tuple(KERNELS),
    ("mosaic", "kernel"): tuple(KERNELS),
    ("mosaic", "match_background"): ("plane", "offset", "none"),
    ("mosaic", "rejection"): REJECTIONS,
    ("mosaic", "weights"): ("noise", "exptime", "none"),
    ("mosaic", "center"): ("mean", "median"),
    ("execution", "progress"): ("auto", "bar", "log", "none"),
}


def default_config():
    """
    The default configuration.

    Returns
    -------
    dict
        Section to option to value (a fresh copy).
    """
    return copy.deepcopy(_DEFAULTS)


_DEFAULTS = yaml.safe_load(DEFAULT_CONFIG_TEXT)


def _lines(text):
    """Map (section, key) to the line number in the YAML text."""
    lines = {}
    node = yaml.compose(text)
    if node is None or not isinstance(node, yaml.MappingNode):
        return lines
    for key_node, value_node in node.value:
        lines[(key_node.value, None)] = key_node.start_mark.line + 1
        if isinstance(value_node, yaml.MappingNode):
            for sub_key, _ in value_node.value:
                lines[(key_node.value, sub_key.value)] = sub_key.start_mark.line + 1
    return lines


def _where(origin, lines, section, key):
    line = lines.get((section, key))
    return f"{origin}, line {line}" if line else origin


def _check_value(section, key, value, default, where):
    name = f"{section}.{key}"
    choices = _CHOICES.get((section, key))
    if choices is not None and value not in choices:
        raise ConfigError(f"{where}: {name} = {value!r}: allowed values are {', '.join(choices)}")
    if default is None or value is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: {name} = {value!r}: allowed values are true, false")
        return value
    if isinstance(default, (int, float)) and not isinstance(value, bool):
        if isinstance(value, (int, float)):
            return type(default)(value) if isinstance(default, float) else value
        raise ConfigError(f"{where}: {name} = {value!r}: a number is needed")
    if isinstance(default, list) and not isinstance(value, list):
        return [value]
    if isinstance(default, str) and not isinstance(value, str):
        raise ConfigError(f"{where}: {name} = {value!r}: a text value is needed")
    return value


def _merge(config, update, *, origin, lines):
    if not isinstance(update, dict):
        raise ConfigError(f"{origin}: the configuration must be a mapping of sections")
    for section, options in update.items():
        if section not in _DEFAULTS:
            raise ConfigError(
                f"{_where(origin, lines, section, None)}: unknown section {section!r}; "
                f"allowed sections are {', '.join(_DEFAULTS)}"
            )
        if not isinstance(options, dict):
            raise ConfigError(f"{_where(origin, lines, section, None)}: {section} must be a mapping")
        for key, value in options.items():
            if key not in _DEFAULTS[section]:
                raise ConfigError(
                    f"{_where(origin, lines, section, key)}: unknown key {section}.{key}; "
                    f"allowed keys are {', '.join(_DEFAULTS[section])}"
                )
            where = _where(origin, lines, section, key)
            config[section][key] = _check_value(section, key, value, _DEFAULTS[section][key], where)


def _parse_override(text):
    if "=" not in text or "." not in text.split("=", 1)[0]:
        raise ConfigError(f"--set {text!r}: expected stage.option=value (for example stack.center=median)")
    name, value = text.split("=", 1)
    section, key = name.strip().split(".", 1)
    return section, key, yaml.safe_load(value) if value.strip() else None


def load_config(path=None, *, overrides=(), base=None):
    """
    Build the configuration of a run.

    Parameters
    ----------
    path : path-like, optional
        A YAML file; its sections override the defaults.
    overrides : sequence of str or dict, optional
        ``"stage.option=value"`` strings (values parsed as YAML) or a nested
        dict; they override the file.
    base : dict, optional
        A configuration to start from instead of the defaults.

    Returns
    -------
    dict
        The configuration (section to option to value).

    Raises
    ------
    ConfigError
        A file that is not YAML, an unknown section or key, a value of the
        wrong kind: the message names the key, the line and the allowed values.

    Examples
    --------
    >>> from astrophot.pipeline import load_config
    >>> load_config(overrides=["stack.center=median"])["stack"]["center"]
    'median'
    """
    config = copy.deepcopy(base) if base is not None else default_config()
    if path is not None:
        path = Path(path)
        try:
            text = path.read_text()
            data = yaml.safe_load(text) or {}
            lines = _lines(text)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the configuration ({exc.strerror or exc})") from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            line = f", line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"{path}{line}: not valid YAML ({getattr(exc, 'problem', exc)})") from None
        _merge(config, data, origin=str(path), lines=lines)
    if isinstance(overrides, dict):
        _merge(config, overrides, origin="overrides", lines={})
    else:
        for text in overrides:
            section, key, value = _parse_override(text)
            _merge(config, {section: {key: value}}, origin=f"--set {text}", lines={})
    return config
