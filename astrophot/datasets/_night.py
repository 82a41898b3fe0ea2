# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""A simulated iTelescope night written to disk, with its truth."""

import logging
from dataclasses import dataclass, field
from pathlib import Path

import astropy.units as u
import numpy as np
import yaml
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.table import QTable
from astropy.time import Time, TimeDelta
from astropy.wcs import WCS

from astrophot.exceptions import AstrophotError
from astrophot.io._atomic import atomic_path, write_text_atomic

from . import _model
from ._headers import EGAIN_TELESCOPES, hour_angle, local_time, night_start, telescope_info
from ._makers import _calibration_frame, _plain, _seconds, expose_light, sky_stars
from ._model import rng_for
from ._truth import PSF, DetectorTruth, FrameTruth
from .catalog import resolve_field

__all__ = ["BAD_FRAME_REASONS", "Night", "load_night", "simulate_night"]

log = logging.getLogger(__name__)

#: Deliberately bad lights `simulate_night` can make.
BAD_FRAME_REASONS = ("defocused", "trailed", "clouded")

_NARROW = {"ha", "oiii", "sii"}
TRUTH_NAME = "truth.yaml"


class SimulationError(AstrophotError, ValueError):
    """Options that cannot make a night (unknown scale, too many bad frames ...)."""


@dataclass(repr=False)
class Night:
    """
    A simulated night on disk and the truth behind it.

    Attributes
    ----------
    root : `~pathlib.Path`
        The output directory.
    telescope, target : str
    center : `~astropy.coordinates.SkyCoord`
        Requested field centre.
    date : str
        Local date of the evening the night starts (``YYYY-MM-DD``).
    binning : int
    shape : tuple of int
        ``(ny, nx)`` of every frame.
    scale : float
        Arcsec per pixel.
    filters : tuple of str
    lights : list of `~pathlib.Path`
        Raw lights (``root/lights/raw-T20-...fit``), in time order.
    biases, darks : list of `~pathlib.Path`
        Raw calibration frames (``<library>/<T>/Raws/{Bias,Darks}/<date>/``).
    flats : dict of str to list of `~pathlib.Path`
        Raw flats per filter (``<library>/<T>/Raws/Flats/<date>/``).
    library : `~pathlib.Path`
        Calibration-library root (``root/library``), laid out as
        iTelescope's: ``<library>/<T>/Masters/{Bias,Darks,Flats}/<yyyy-mm>/``.
    masters : dict
        ``'bias'`` and ``'dark'`` paths and ``'flats'`` (filter to path) of
        the master files, empty without a calibration library.
    detector : DetectorTruth
    frames : dict of str to FrameTruth
        Truth per file name (lights, raw calibration frames).
    options : dict
        The simulation options (for the record).
    truth_path : `~pathlib.Path`
        ``root/truth.yaml``.
    """

    root: Path
    telescope: str
    target: str
    center: SkyCoord
    date: str
    binning: int
    shape: tuple
    scale: float
    filters: tuple
    lights: list = field(default_factory=list)
    biases: list = field(default_factory=list)
    darks: list = field(default_factory=list)
    flats: dict = field(default_factory=dict)
    library: Path = None
    masters: dict = field(default_factory=dict)
    detector: DetectorTruth = None
    frames: dict = field(default_factory=dict)
    options: dict = field(default_factory=dict)
    truth_path: Path = None

    def __repr__(self):
        ny, nx = self.shape
        n_flats = sum(len(v) for v in self.flats.values())
        return (
            f"<Night {self.telescope} {self.target} {self.date} in {self.root}: {len(self.lights)} lights "
            f'{nx}x{ny} bin{self.binning} at {self.scale:.3f}"/px in {", ".join(self.filters)}; '
            f"{len(self.biases)} bias, {len(self.darks)} darks, {n_flats} flats; "
            f"masters: {'yes' if self.masters else 'no'}>"
        )

    def truth_for(self, path):
        """The `FrameTruth` of a file (path or name) of this night."""
        name = Path(path).name
        try:
            return self.frames[name]
        except KeyError:
            raise KeyError(f"{name}: not a frame of the night in {self.root}") from None

    @property
    def light_truths(self):
        """`FrameTruth` of each light, in the order of `lights`."""
        return [self.frames[p.name] for p in self.lights]

    @property
    def bad_lights(self):
        """Light paths deliberately made bad, with the reason: dict path to reason."""
        return {p: self.frames[p.name].bad_reason for p in self.lights if self.frames[p.name].bad_reason}

    # ------------------------------------------------------------------
    def to_yaml(self, path=None):
        """
        Write the truth beside the data and return the YAML path.

        ``truth.yaml`` holds every scalar (detector, per-frame PSF, sky, WCS
        as a FITS header string, pointing ...); ``truth/<stem>.stars.ecsv``
        the star table of each light; ``truth/arrays.fits`` the bias
        structure, dark current, flat fields and cosmic-ray masks.

        Parameters
        ----------
        path : path-like, optional
            YAML file; ``root/truth.yaml`` by default.

        Returns
        -------
        `~pathlib.Path`
        """
        path = Path(path) if path is not None else self.root / TRUTH_NAME
        folder = path.parent / "truth"
        folder.mkdir(parents=True, exist_ok=True)
        hdus = [fits.PrimaryHDU()]
        det = self.detector
        hdus.append(fits.ImageHDU(det.bias_structure.astype(np.float32), name="BIAS_STRUCTURE"))
        hdus.append(fits.ImageHDU(det.dark_current.astype(np.float32), name="DARK_CURRENT"))
        flat_hdus = {}
        for i, (name, flat) in enumerate(sorted(det.flats.items())):
            hdu = fits.ImageHDU(flat.astype(np.float32), name=f"FLAT{i}")
            hdu.header["FILTER"] = name
            flat_hdus[name] = hdu.name
            hdus.append(hdu)
        frames = {}
        cr_rows = {"frame": [], "x": [], "y": [], "electrons": []}
        for i, (name, truth) in enumerate(self.frames.items()):
            entry = truth.scalars()
            entry["array_index"] = i
            if truth.cosmic_rays is not None and truth.n_cosmic_rays:
                ys, xs = np.nonzero(truth.cosmic_rays)
                cr_rows["frame"].append(np.full(xs.size, i, dtype=np.int32))
                cr_rows["x"].append(xs.astype(np.int32))
                cr_rows["y"].append(ys.astype(np.int32))
                if truth.cosmic_ray_electrons is not None:
                    cr_rows["electrons"].append(truth.cosmic_ray_electrons[ys, xs].astype(np.float32))
                else:
                    cr_rows["electrons"].append(np.full(xs.size, np.nan, dtype=np.float32))
            if truth.stars is not None:
                stars_name = f"{Path(name).stem}.stars.ecsv"
                table = QTable(truth.stars)
                table.meta = {"frame": name}
                table.write(folder / stars_name, format="ascii.ecsv", overwrite=True)
                entry["stars_file"] = f"truth/{stars_name}"
            frames[name] = entry
        columns = {k: (np.concatenate(v) if v else np.zeros(0)) for k, v in cr_rows.items()}
        cr_table = fits.BinTableHDU.from_columns(
            [
                fits.Column(name="FRAME", format="J", array=columns["frame"].astype(np.int32)),
                fits.Column(name="X", format="J", array=columns["x"].astype(np.int32)),
                fits.Column(name="Y", format="J", array=columns["y"].astype(np.int32)),
                fits.Column(name="ELECTRONS", format="E", array=columns["electrons"].astype(np.float32)),
            ],
            name="COSMIC_RAYS",
        )
        cr_table.header["COMMENT"] = (
            "Pixels hit by cosmic rays: FRAME is array_index in truth.yaml; 0-based X, Y"
        )
        hdus.append(cr_table)
        _atomic_fits(fits.HDUList(hdus), folder / "arrays.fits")
        document = {
            "astrophot_simulated_night": 1,
            "telescope": self.telescope,
            "target": self.target,
            "center": [float(self.center.ra.deg), float(self.center.dec.deg)],
            "date": self.date,
            "binning": int(self.binning),
            "shape": [int(n) for n in self.shape],
            "scale": float(self.scale),
            "filters": list(self.filters),
            "options": _plain_yaml(self.options),
            "lights": [str(p.relative_to(self.root)) for p in self.lights],
            "biases": [str(p.relative_to(self.root)) for p in self.biases],
            "darks": [str(p.relative_to(self.root)) for p in self.darks],
            "flats": {k: [str(p.relative_to(self.root)) for p in v] for k, v in self.flats.items()},
            "library": str(self.library.relative_to(self.root)) if self.library else None,
            "masters": _relative_masters(self.masters, self.root),
            "arrays_file": "truth/arrays.fits",
            "flat_hdus": flat_hdus,
            "detector": det.scalars(),
            "frames": frames,
        }
        text = yaml.safe_dump(document, sort_keys=False, width=100)
        _atomic_text(text, path)
        self.truth_path = path
        return path

    @classmethod
    def load(cls, root):
        """Read a night written by `simulate_night` (see `load_night`)."""
        return load_night(root)


def _relative_masters(masters, root):
    out = {}
    for key, value in masters.items():
        if isinstance(value, dict):
            out[key] = {k: str(Path(v).relative_to(root)) for k, v in value.items()}
        else:
            out[key] = str(Path(value).relative_to(root))
    return out


def _plain_yaml(value):
    if isinstance(value, dict):
        return {str(k): _plain_yaml(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_yaml(v) for v in value]
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, u.Quantity):
        return float(value.value)
    if isinstance(value, SkyCoord):
        return [float(value.ra.deg), float(value.dec.deg)]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _atomic_text(text, path):
    write_text_atomic(path, text)


def _atomic_fits(hdul, path):
    with atomic_path(path) as tmp:
        hdul.writeto(tmp, overwrite=True)


def write_raw_fits(path, data, header):
    """
    Write a camera file: uint16 stored as int16 with ``BZERO = 32768``.

    The cards follow MaxIm DL's order (BSCALE, BZERO right after NAXIS2).
    Refuses to overwrite an existing file.
    """
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path}: exists; simulate_night does not overwrite files")
    hdu = fits.PrimaryHDU(np.asarray(data, dtype=np.uint16), header=header)
    for key in ("BSCALE", "BZERO"):
        if key in hdu.header:
            del hdu.header[key]
    hdu.header.insert("NAXIS2", ("BSCALE", 1.0, "physical = BZERO + BSCALE*array_value"), after=True)
    hdu.header.insert("BSCALE", ("BZERO", 32768.0, "physical = BZERO + BSCALE*array_value"), after=True)
    if "EXTEND" in hdu.header:
        del hdu.header["EXTEND"]
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_fits(fits.HDUList([hdu]), path)
    return path


def _write_master(path, data, header, *, calstat, n, kind):
    path = Path(path)
    if path.exists():
        raise FileExistsError(f"{path}: exists; simulate_night does not overwrite files")
    h = header.copy()
    for key in ("CBLACK", "CWHITE"):
        h.remove(key, ignore_missing=True)
    h["CALSTAT"] = (calstat, "Calibration status")
    h["NCOMBINE"] = (int(n), "Number of frames averaged")
    h.add_history(f"Average of {n} {kind} frames (astrophot simulated calibration library)")
    hdu = fits.PrimaryHDU(np.asarray(data, dtype=np.float32), header=h)
    path.parent.mkdir(parents=True, exist_ok=True)
    _atomic_fits(fits.HDUList([hdu]), path)
    return path


def _raw_name(info, user, target, local, filter, binning, side, exposure, seq):
    try:
        from astrophot.instruments.itelescope import make_raw_filename
    except ImportError:  # pragma: no cover - instruments are part of the package
        make_raw_filename = None
    if make_raw_filename is not None:
        return make_raw_filename(
            telescope=info.id,
            user=user,
            target=target,
            local_time=local,
            filter=filter,
            binning=binning,
            pier_side=side,
            exposure=exposure,
            sequence=seq,
        )
    exp = int(exposure) if float(exposure).is_integer() else exposure  # pragma: no cover
    return (  # pragma: no cover
        f"raw-{info.id}-{user}-{target.replace(' ', '_')}-{local:%Y%m%d-%H%M%S}-{filter}-BIN{binning}-"
        f"{side}-{exp}-{seq:03d}.fit"
    )


def _master_name(kind, *, binning, shape, set_temperature, exposure, filter=None):
    try:
        from astrophot.instruments.itelescope import make_master_filename
    except ImportError:  # pragma: no cover
        make_master_filename = None
    if make_master_filename is not None:
        return make_master_filename(
            kind,
            binning=binning,
            shape=shape,
            set_temperature=set_temperature,
            exposure=exposure,
            filter=filter,
        )
    ny, nx = shape  # pragma: no cover
    exp = "0ms" if exposure == 0 else f"{exposure:g}s"  # pragma: no cover
    head = f"Master_Flat_{filter}_{binning}_{filter}" if kind == "Flat" else f"Master_{kind}_{binning}"
    tail = f"{nx}x{ny}_Bin{binning}x{binning}_Temp{set_temperature:g}C_ExpTime{exp}"  # pragma: no cover
    return f"{head}_{tail}.fit"  # pragma: no cover


def _per_filter(value, filters, what):
    if isinstance(value, dict):
        missing = [f for f in filters if f not in value]
        if missing:
            raise SimulationError(f"{what} has no value for filter(s) {', '.join(missing)}")
        return {f: _seconds(value[f], what) for f in filters}
    return {f: _seconds(value, what) for f in filters}


def simulate_night(
    outdir,
    *,
    telescope="T20",
    target="M31",
    center=None,
    filters=("Ha", "Red"),
    n_lights=4,
    binning=2,
    shape=None,
    scale=None,
    exposure=300.0,
    date="2021-10-05",
    user="astrophot",
    seed=0,
    n_bias=5,
    n_darks=5,
    n_flats=5,
    dark_exposure=900.0,
    flat_exposure=None,
    flat_level=20000.0,
    dark_bias_subtracted=False,
    bad_frames=(),
    cosmic_rays=True,
    calibration_library=True,
    fwhm=2.5,
    beta=3.0,
    pointing_jitter=10.0,
    pointings=None,
    synthetic_density=300.0,
    sky_brightness=20.5,
    write_truth=True,
):
    """
    Simulate an iTelescope night on disk: raw lights, calibration frames, a
    calibration library, and the truth.

    Parameters
    ----------
    outdir : path-like
        Output directory (created; existing files are never overwritten).
    telescope : str
        iTelescope telescope (facts from `astrophot.instruments.itelescope`).
    target : str
        Target name for the file names; also the field when it names one of
        `demo_fields` and ``center`` is not given.
    center : `~astropy.coordinates.SkyCoord` or tuple of float, optional
        Field centre (then stars come from the installed index files unless
        the shipped extract covers it).
    filters : sequence of str
    n_lights : int
        Lights per filter.
    binning : int
    shape : tuple of int, optional
        ``(ny, nx)``; the telescope's frame at this binning by default.
    scale : float, optional
        Arcsec per pixel; the telescope's plate scale times the binning by
        default.
    exposure : float or dict
        Light exposure (seconds), or one per filter.
    date : str
        Local date of the evening (``YYYY-MM-DD``); the lights start when the
        target is about an hour east of the meridian.
    user : str
        iTelescope user name in the file names.
    seed : int
        Everything random derives from it: the same seed gives the same bytes.
    n_bias, n_darks, n_flats : int
        Raw calibration frames (flats per filter).
    dark_exposure : float
        Seconds (iTelescope's T20 darks are 900 s).
    flat_exposure : float or dict, optional
        Seconds; 5 s broad band and 30 s narrow band by default.
    flat_level : float
        Flat illumination (ADU).
    dark_bias_subtracted : bool
        Write the master dark bias-subtracted (``CALSTAT='BM'``) instead of
        with the bias in (``'M'``).
    bad_frames : sequence of str
        Reasons from `BAD_FRAME_REASONS`, one bad light each: ``'defocused'``
        (FWHM x3), ``'trailed'`` (ellipticity 0.5), ``'clouded'``
        (transparency 0.2, sky x3). They replace lights 2, 3, ... of the
        night (the first light stays good).
    cosmic_rays : bool
    calibration_library : bool
        Write master bias, dark and flats in iTelescope's library layout.
    fwhm, beta : float
        Typical PSF (pixels); each light varies by a few per cent.
    pointing_jitter : float
        Rms pointing error (arcsec).
    pointings : sequence of (float, float), optional
        Panels of a mosaic: ``(east, north)`` offsets of each pointing from
        ``center`` in units of the field's width and height (e.g.
        ``((-0.4, 0), (0.4, 0))``: two panels overlapping by a fifth of the
        field). The lights of each filter go round the pointings in turn.
        Default: one pointing, on ``center``.
    synthetic_density : float
        Faint synthetic stars per square degree (0 for Tycho-2 only).
    sky_brightness : float
        Mag/arcsec^2.
    write_truth : bool
        Write ``truth.yaml`` and the ``truth/`` folder.

    Returns
    -------
    Night

    Raises
    ------
    SimulationError
        Unknown plate scale, too many bad frames, an unknown reason.
    astrophot.datasets.CatalogError
        No catalogue covers the field.

    See Also
    --------
    make_raw_frame, load_night

    Notes
    -----
    Layout under ``outdir``::

        lights/raw-T20-<user>-<target>-<yyyymmdd>-<hhmmss>-<filter>-BIN2-<E|W>-300-001.fit
        library/T20/Raws/{Bias,Darks,Flats}/<yyyy-mm-dd>/*.fit
        library/T20/Masters/{Bias,Darks,Flats}/<yyyy-mm>/Master_*.fit
        truth.yaml, truth/arrays.fits, truth/*.stars.ecsv

    The time in a raw file name is the telescope's local clock; DATE-OBS is
    UT. A pier flip (``E``) turns the field by 180 degrees, as on a German
    equatorial mount.

    Examples
    --------
    >>> from astrophot.datasets import simulate_night
    >>> night = simulate_night(getfixture('tmp_path'), shape=(64, 96), n_lights=1, n_bias=2,
    ...                        n_darks=2, n_flats=2, seed=1)
    >>> [p.name[:22] for p in night.lights]
    ['raw-T20-astrophot-M31-', 'raw-T20-astrophot-M31-']
    >>> night.masters['dark'].name
    'Master_Dark_2_96x64_Bin2x2_Temp-15C_ExpTime900s.fit'
    """
    root = Path(outdir)
    info = telescope_info(telescope)
    filters = tuple(str(f) for f in filters)
    if not filters:
        raise SimulationError("at least one filter is needed")
    binning = int(binning)
    shape, scale = _geometry(info, binning, shape, scale)
    _check_bad_frames(bad_frames, int(n_lights) * len(filters))
    exposures = _per_filter(exposure, filters, "exposure")
    if flat_exposure is None:
        flat_exposures = {f: 30.0 if f.lower() in _NARROW else 5.0 for f in filters}
    else:
        flat_exposures = _per_filter(flat_exposure, filters, "flat_exposure")
    dark_exposure = _seconds(dark_exposure, "dark_exposure")
    coord = resolve_field(center if center is not None else target)
    set_temp = info.set_temperature if info.set_temperature is not None else -15.0
    det = _model.make_detector(
        shape,
        binning=binning,
        gain=info.gain if info.gain is not None else 1.5,
        read_noise=info.read_noise if info.read_noise is not None else 10.0,
        bias_level=1000.0,
        dark_current=0.02 * binning**2,
        set_temperature=set_temp,
        pixel_size=(info.pixel_size or 9.0) * binning,
        seed=seed,
    )
    options = {
        "filters": list(filters),
        "n_lights": int(n_lights),
        "exposure": exposures,
        "seed": int(seed),
        "n_bias": int(n_bias),
        "n_darks": int(n_darks),
        "n_flats": int(n_flats),
        "dark_exposure": dark_exposure,
        "flat_exposure": flat_exposures,
        "flat_level": float(flat_level),
        "dark_bias_subtracted": bool(dark_bias_subtracted),
        "bad_frames": list(bad_frames),
        "cosmic_rays": bool(cosmic_rays),
        "fwhm": float(fwhm),
        "beta": float(beta),
        "pointing_jitter": float(pointing_jitter),
        "pointings": _pointings(pointings),
        "synthetic_density": float(synthetic_density),
        "sky_brightness": float(sky_brightness),
        "user": user,
    }
    night = Night(
        root=root,
        telescope=info.id,
        target=str(target),
        center=coord,
        date=str(date),
        binning=binning,
        shape=shape,
        scale=scale,
        filters=filters,
        detector=det,
        options=options,
    )
    if write_truth and (root / TRUTH_NAME).exists():
        raise FileExistsError(
            f"{root / TRUTH_NAME}: a simulated night is already there; simulate_night "
            "does not overwrite files"
        )
    root.mkdir(parents=True, exist_ok=True)
    night.library = root / "library"
    sim = _Simulation(
        night=night,
        info=info,
        det=det,
        seed=seed,
        egain=det.gain if info.id in EGAIN_TELESCOPES else None,
        cr_rate=20.0 if cosmic_rays else 0.0,
        set_temperature=set_temp,
    )
    start = night_start(date, coord.ra.deg, info)
    _expose_lights(sim, start)
    raw_data = _calibration_raws(sim, start, Time(f"{date}T18:00:00", scale="utc"))
    if calibration_library:
        _write_masters(sim, raw_data, Time(f"{date}T18:00:00", scale="utc"))
    if write_truth:
        night.to_yaml()
    log.info(
        "simulated %d lights and %d calibration frames in %s",
        len(night.lights),
        len(night.frames) - len(night.lights),
        root,
    )
    return night


def _pointings(pointings):
    """The panels' ``[east, north]`` offsets (field units) as plain lists, or None for one pointing."""
    if pointings is None:
        return None
    panels = [[float(v) for v in pair] for pair in pointings]
    if not panels or any(len(pair) != 2 or not np.all(np.isfinite(pair)) for pair in panels):
        raise SimulationError(f"pointings must be (east, north) pairs of finite numbers, not {pointings!r}")
    return panels


def _geometry(info, binning, shape, scale):
    """Frame shape ``(ny, nx)`` and scale (arcsec/px): given, or the telescope's at this binning."""
    if shape is None:
        if info.shape is None:
            raise SimulationError(f"{info.id}: frame size unknown; pass shape=(ny, nx)")
        shape = (info.shape[0] // binning, info.shape[1] // binning)
    shape = tuple(int(n) for n in shape)
    if scale is None:
        scale = info.scale(binning)
        if scale is None:
            raise SimulationError(
                f"{info.id}: plate scale unknown (no focal length or pixel size); pass scale="
            )
    return shape, _plain(scale, u.arcsec)


def _check_bad_frames(bad_frames, n_total):
    for reason in bad_frames:
        if reason not in BAD_FRAME_REASONS:
            raise SimulationError(f"unknown bad-frame reason {reason!r}: use {', '.join(BAD_FRAME_REASONS)}")
    if len(bad_frames) > max(0, n_total - 1):
        raise SimulationError(f"{len(bad_frames)} bad frames need at least {len(bad_frames) + 1} lights")


@dataclass
class _Simulation:
    """What every part of one `simulate_night` call shares."""

    night: Night
    info: object
    det: object
    seed: int
    egain: object
    cr_rate: float
    set_temperature: float

    @property
    def options(self):
        return self.night.options


def _light_psf(prng, fwhm, beta, reason):
    """This light's PSF, transparency and sky factor (a bad frame's reason changes them)."""
    this_fwhm = float(fwhm * np.clip(1 + prng.normal(0, 0.04), 0.85, 1.15))
    psf = PSF(this_fwhm, float(beta), float(prng.uniform(0.0, 0.06)), float(prng.uniform(0, 180)))
    transparency, sky_factor = float(np.clip(prng.normal(0.97, 0.02), 0.9, 1.0)), 1.0
    if reason == "defocused":
        psf = PSF(3.0 * this_fwhm, float(beta), psf.ellipticity, psf.theta)
    elif reason == "trailed":
        e = 0.5
        psf = PSF(this_fwhm / np.sqrt(1 - e), float(beta), e, float(prng.uniform(0, 180)))
    elif reason == "clouded":
        transparency, sky_factor = 0.2, 3.0
    return psf, transparency, sky_factor


def _expose_lights(sim, start):
    """Write the raw lights, filter after filter, from ``start`` (UT)."""
    night, info, opts, seed = sim.night, sim.info, sim.options, sim.seed
    coord, scale = night.center, night.scale
    fwhm, beta, pointing_jitter = opts["fwhm"], opts["beta"], opts["pointing_jitter"]
    nrng = rng_for(seed, "night")
    base_rotation = float(nrng.uniform(-1.0, 1.0))
    ny, nx = night.shape
    max_jitter = 5.0 * pointing_jitter / 3600.0
    panels = opts.get("pointings") or [[0.0, 0.0]]
    width, height = nx * scale / 3600.0, ny * scale / 3600.0
    reach = max(np.hypot(e * width, n * height) for e, n in panels)
    radius = 0.5 * np.hypot(nx, ny) * scale / 3600.0 + max_jitter + 12.0 * fwhm * scale / 3600.0 + 0.01
    radius += reach
    catalog, source = sky_stars(coord, radius, synthetic_density=opts["synthetic_density"], seed=seed)
    bad_slots = {i + 1: reason for i, reason in enumerate(opts["bad_frames"])}
    t = start
    index = 0
    for filt in night.filters:
        for seq in range(1, opts["n_lights"] + 1):
            exp = opts["exposure"][filt]
            prng = rng_for(seed, "frame", "psf", index)
            reason = bad_slots.get(index)
            psf, transparency, sky_factor = _light_psf(prng, fwhm, beta, reason)
            mid = t + TimeDelta(exp / 2.0, format="sec")
            side = "W" if hour_angle(mid, coord.ra.deg, info.longitude or 0.0) < 0 else "E"
            rotation = base_rotation + float(prng.normal(0, 0.02)) + (180.0 if side == "E" else 0.0)
            jitter = prng.normal(0.0, pointing_jitter, 2) * u.arcsec
            east, north = panels[(seq - 1) % len(panels)]
            pointing = coord.spherical_offsets_by(
                east * width * u.deg + jitter[0], north * height * u.deg + jitter[1]
            )
            data, truth = expose_light(
                sim.det,
                info,
                catalog=catalog,
                catalog_source=source,
                pointing=pointing,
                target_coord=coord,
                rotation=rotation % 360.0,
                scale=scale,
                psf=psf,
                exposure=exp,
                filter=filt,
                date=t,
                index=index,
                seed=seed,
                sky_brightness=opts["sky_brightness"],
                transparency=transparency,
                cosmic_ray_rate=sim.cr_rate,
                egain=sim.egain,
                bad_reason=reason,
                sky_factor=sky_factor,
            )
            local = local_time(t, info)
            truth.local_time = local
            truth.pier_side = side
            name = _raw_name(info, opts["user"], night.target, local, filt, night.binning, side, exp, seq)
            truth.filename = name
            night.lights.append(write_raw_fits(night.root / "lights" / name, data, truth.header))
            night.frames[name] = truth
            index += 1
            t = t + TimeDelta(exp + 30.0, format="sec")
        t = t + TimeDelta(60.0, format="sec")


def _raw_calibration(sim, kind, folder, name, *, index, exposure, date, cosmic_ray_rate, **extra):
    """Write one raw calibration frame into the library; returns its data and path."""
    data, truth = _calibration_frame(
        kind,
        sim.det,
        sim.info,
        index=index,
        exposure=exposure,
        date=date,
        seed=sim.seed,
        cosmic_ray_rate=cosmic_ray_rate,
        egain=sim.egain,
        **extra,
    )
    truth.filename = name
    path = write_raw_fits(folder / name, data, truth.header)
    sim.night.frames[name] = truth
    return data, path


def _calibration_raws(sim, start, cal_day):
    """Biases and darks (the afternoon before, UT) and flats (an hour before ``start``)."""
    night, opts, binning = sim.night, sim.options, sim.night.binning
    day_dir = cal_day.strftime("%Y-%m-%d")
    raws = night.library / sim.info.id / "Raws"
    dark_exposure = opts["dark_exposure"]
    bias_data, dark_data, flat_data = [], [], {f: [] for f in night.filters}
    for i in range(opts["n_bias"]):
        data, path = _raw_calibration(
            sim,
            "bias",
            raws / "Bias" / day_dir,
            f"Bias_Bin{binning}_{i + 1:03d}.fit",
            index=i,
            exposure=0.0,
            date=cal_day + TimeDelta(10.0 * i, format="sec"),
            cosmic_ray_rate=0.0,
        )
        night.biases.append(path)
        bias_data.append(data)
    t0 = cal_day + TimeDelta(600.0, format="sec")
    for i in range(opts["n_darks"]):
        data, path = _raw_calibration(
            sim,
            "dark",
            raws / "Darks" / day_dir,
            f"Dark_Bin{binning}_{dark_exposure:g}s_{i + 1:03d}.fit",
            index=i,
            exposure=dark_exposure,
            date=t0 + TimeDelta((dark_exposure + 10.0) * i, format="sec"),
            cosmic_ray_rate=sim.cr_rate,
        )
        night.darks.append(path)
        dark_data.append(data)
    t0 = start - TimeDelta(3600.0, format="sec")
    for filt in night.filters:
        night.flats[filt] = []
        for i in range(opts["n_flats"]):
            fexp = opts["flat_exposure"][filt]
            data, path = _raw_calibration(
                sim,
                "flat",
                raws / "Flats" / day_dir,
                f"Flat_{filt}_Bin{binning}_{i + 1:03d}.fit",
                index=i,
                exposure=fexp,
                date=t0,
                cosmic_ray_rate=sim.cr_rate,
                filter=filt,
                level=opts["flat_level"] * sim.det.gain,
            )
            t0 = t0 + TimeDelta(fexp + 10.0, format="sec")
            night.flats[filt].append(path)
            flat_data[filt].append(data)
    return bias_data, dark_data, flat_data


def _write_masters(sim, raw_data, cal_day):
    """The calibration library: masters averaged from the raw frames, in iTelescope's layout."""
    night, opts = sim.night, sim.options
    bias_data, dark_data, flat_data = raw_data
    month = cal_day.strftime("%Y-%m")
    masters = night.library / sim.info.id / "Masters"
    common = {"binning": night.binning, "shape": night.shape, "set_temperature": sim.set_temperature}
    dark_exposure = opts["dark_exposure"]
    bias_master = None
    if bias_data:
        bias_master = np.mean(np.array(bias_data, dtype=np.float64), axis=0)
        first = night.frames[night.biases[0].name].header
        name = _master_name("Bias", exposure=0.0, **common)
        night.masters["bias"] = _write_master(
            masters / "Bias" / month / name, bias_master, first, calstat="M", n=len(bias_data), kind="bias"
        )
    if dark_data:
        dark_master = np.mean(np.array(dark_data, dtype=np.float64), axis=0)
        calstat = "M"
        if opts["dark_bias_subtracted"]:
            if bias_master is None:
                raise SimulationError("a bias-subtracted master dark needs n_bias > 0")
            dark_master = dark_master - bias_master
            calstat = "BM"
        first = night.frames[night.darks[0].name].header
        name = _master_name("Dark", exposure=dark_exposure, **common)
        night.masters["dark"] = _write_master(
            masters / "Darks" / month / name,
            dark_master,
            first,
            calstat=calstat,
            n=len(dark_data),
            kind="dark",
        )
    night.masters["flats"] = {}
    for filt in night.filters:
        if not flat_data[filt]:
            continue
        flat_master = np.mean(np.array(flat_data[filt], dtype=np.float64), axis=0)
        calstat = "M"
        if bias_master is not None:
            # iTelescope's flats are bias- and dark-subtracted, not normalised
            flat_master = flat_master - bias_master
            calstat = "BM"
            if dark_data:
                scale_dark = opts["flat_exposure"][filt] / dark_exposure
                dark_current = np.mean(np.array(dark_data, dtype=np.float64), axis=0) - bias_master
                flat_master = flat_master - scale_dark * dark_current
                calstat = "BDM"
        first = night.frames[night.flats[filt][0].name].header
        name = _master_name("Flat", exposure=opts["flat_exposure"][filt], filter=filt, **common)
        night.masters["flats"][filt] = _write_master(
            masters / "Flats" / month / name,
            flat_master,
            first,
            calstat=calstat,
            n=len(flat_data[filt]),
            kind=f"{filt} flat",
        )


def load_night(root):
    """
    Read back a night written by `simulate_night` (its ``truth.yaml``).

    Parameters
    ----------
    root : path-like
        The directory given to `simulate_night` (or its ``truth.yaml``).

    Returns
    -------
    Night
        With the detector arrays, every frame's scalars, WCS, stars and
        cosmic-ray mask (not the noiseless images).

    Raises
    ------
    SimulationError
        No ``truth.yaml`` there, or not one written by astrophot.
    """
    root = Path(root)
    path = root if root.suffix in (".yaml", ".yml") else root / TRUTH_NAME
    root = path.parent
    if not path.is_file():
        raise SimulationError(f"{path}: no such file (not a night written by simulate_night?)")
    with open(path) as fh:
        doc = yaml.safe_load(fh)
    if not isinstance(doc, dict) or doc.get("astrophot_simulated_night") != 1:
        raise SimulationError(f"{path}: not the truth of a night simulated by astrophot")
    d = doc["detector"]
    with fits.open(root / doc["arrays_file"]) as hdul:
        bias_structure = np.array(hdul["BIAS_STRUCTURE"].data, dtype=np.float64)
        dark_current = np.array(hdul["DARK_CURRENT"].data, dtype=np.float64)
        flats = {f: np.array(hdul[h].data, dtype=np.float64) for f, h in doc["flat_hdus"].items()}
        cr = hdul["COSMIC_RAYS"].data
        cr_frame, cr_x, cr_y = (np.array(cr[k], dtype=np.int64) for k in ("FRAME", "X", "Y"))
        cr_e = np.array(cr["ELECTRONS"], dtype=np.float64)
    det = DetectorTruth(
        shape=tuple(d["shape"]),
        binning=d["binning"],
        gain=d["gain"],
        read_noise=d["read_noise"],
        bias_level=d["bias_level"],
        bias_structure=bias_structure,
        dark_current=dark_current,
        dark_current_level=d["dark_current_level"],
        hot_pixels=np.array(d["hot_pixels"], dtype=float).reshape(-1, 3),
        bad_columns=d["bad_columns"],
        bad_rows=d["bad_rows"],
        bad_line_current=d["bad_line_current"],
        flats=flats,
        dust=d["dust"],
        saturation=d["saturation"],
        set_temperature=d["set_temperature"],
        pixel_size=d["pixel_size"],
        seed=d["seed"],
    )
    frames = {}
    for name, e in doc["frames"].items():
        header_path = _find_frame_file(root, doc, name)
        header = fits.getheader(header_path) if header_path is not None else None
        kw = {}
        if e["kind"] == "light":
            stars = QTable.read(root / e["stars_file"], format="ascii.ecsv") if e.get("stars_file") else None
            kw = dict(
                local_time=None if e.get("local_time") is None else _datetime(e["local_time"]),
                pier_side=e.get("pier_side"),
                wcs=WCS(fits.Header.fromstring(e["wcs"])),
                pointing=SkyCoord(e["pointing"][0] * u.deg, e["pointing"][1] * u.deg),
                rotation=e["rotation"],
                scale=e["scale"],
                psf=PSF(e["psf"]["fwhm"], e["psf"]["beta"], e["psf"]["ellipticity"], e["psf"]["theta"]),
                stars=stars,
                catalog_source=e.get("catalog_source"),
                zero_point=e["zero_point"],
                transparency=e["transparency"],
                sky_level=e["sky_level"],
                sky_slope=tuple(e["sky_slope"]),
            )
        sel = cr_frame == e["array_index"]
        mask = np.zeros(det.shape, dtype=bool)
        mask[cr_y[sel], cr_x[sel]] = True
        deposit = None
        if sel.any():
            deposit = np.zeros(det.shape)
            deposit[cr_y[sel], cr_x[sel]] = cr_e[sel]
        frames[name] = FrameTruth(
            kind=e["kind"],
            index=e["index"],
            exposure=e["exposure"],
            date_obs=Time(e["date_obs"], scale="utc"),
            header=header,
            filter=e.get("filter"),
            filename=name,
            ccd_temperature=e.get("ccd_temperature"),
            cosmic_rays=mask,
            cosmic_ray_electrons=deposit,
            n_cosmic_rays=e["n_cosmic_rays"],
            dark_line_factors=e.get("dark_line_factors", {}),
            flat_level=e.get("flat_level"),
            bad_reason=e.get("bad_reason"),
            **kw,
        )
    ra, dec = doc["center"]
    return Night(
        root=root,
        telescope=doc["telescope"],
        target=doc["target"],
        center=SkyCoord(ra * u.deg, dec * u.deg),
        date=doc["date"],
        binning=doc["binning"],
        shape=tuple(doc["shape"]),
        scale=doc["scale"],
        filters=tuple(doc["filters"]),
        lights=[root / p for p in doc["lights"]],
        biases=[root / p for p in doc["biases"]],
        darks=[root / p for p in doc["darks"]],
        flats={k: [root / p for p in v] for k, v in doc["flats"].items()},
        library=root / doc["library"] if doc.get("library") else None,
        masters={
            k: ({kk: root / vv for kk, vv in v.items()} if isinstance(v, dict) else root / v)
            for k, v in doc["masters"].items()
        },
        detector=det,
        frames=frames,
        options=doc.get("options", {}),
        truth_path=path,
    )


def _find_frame_file(root, doc, name):
    for group in ("lights", "biases", "darks"):
        for p in doc[group]:
            if Path(p).name == name:
                return root / p
    for paths in doc["flats"].values():
        for p in paths:
            if Path(p).name == name:
                return root / p
    return None


def _datetime(text):
    import datetime

    return datetime.datetime.fromisoformat(text)
