# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Colour composites: three frames on one grid to a stretched, balanced, north-up RGB picture."""

import logging
import struct
import zlib
from pathlib import Path

import numpy as np
from astropy.io import fits
from astropy.stats import sigma_clipped_stats

from astrophot._concurrency import resolve_threads, thread_map
from astrophot.analysis._common import as_frame, frame_name
from astrophot.combination._samegrid import same_grid_or_resample
from astrophot.combination._stretch import LUPTON_DEFAULTS, STIFF_DEFAULTS, STRETCHES, run_blocks
from astrophot.exceptions import AnalysisError, FrameMismatchError, FrameWriteError
from astrophot.io._atomic import atomic_path
from astrophot.provenance._capture import start_step

__all__ = ["PALETTES", "ColorComposite", "make_color_composite"]

log = logging.getLogger(__name__)

#: Palette -> filters feeding red, green and blue.
PALETTES = {
    "RGB": ("Red", "Green", "Blue"),
    "LRGB": ("Red", "Green", "Blue"),
    "HaRGB": ("Red", "Green", "Blue"),
    "SHO": ("SII", "Ha", "OIII"),
    "HOO": ("Ha", "OIII", "OIII"),
}


class ColorComposite:
    """
    An RGB picture made by `make_color_composite`.

    Parameters
    ----------
    data : array-like
        ``(3, ny, nx)`` values in [0, 1], FITS order (stored as float32).
    wcs : `~astropy.wcs.WCS`, optional
        The celestial WCS of ``data``.
    meta : dict, optional
        Description of the picture (copied).
    provenance : `~astrophot.provenance.Provenance`, optional
        Default: a new provenance record.

    Attributes
    ----------
    data : numpy.ndarray
        float32 ``(3, ny, nx)`` in [0, 1], FITS order (row 0 at the bottom),
        turned so that north is up (+y) and east left when the WCS allows.
    wcs : `~astropy.wcs.WCS` or None
        The celestial WCS of ``data``.
    meta : dict
        Channels (file and filter), stretch and its parameters, balance factors.
    provenance : `~astrophot.provenance.Provenance`
    """

    def __init__(self, data, *, wcs=None, meta=None, provenance=None):
        from astrophot.provenance import Provenance

        self.data = np.asarray(data, dtype=np.float32)
        self.wcs = wcs
        self.meta = dict(meta or {})
        self.provenance = provenance if provenance is not None else Provenance.new()

    # a property, documented as an attribute: no Returns section (RT01 ignored)
    @property
    def rgb(self):  # numpydoc ignore=RT01
        """``(ny, nx, 3)`` in display order (row 0 at the top), float32 in [0, 1]."""
        return np.ascontiguousarray(self.data[:, ::-1, :].transpose(1, 2, 0))

    # a property, documented as an attribute: no Returns section (RT01 ignored)
    @property
    def shape(self):  # numpydoc ignore=RT01
        """``(ny, nx)``."""
        return self.data.shape[1:]

    def checksum(self):
        """
        The sha256 of the pixel data.

        Returns
        -------
        str
            The hex digest (`~astrophot.frames.data_checksum`).
        """
        from astrophot.frames import data_checksum

        return data_checksum(self.data)

    frame_type = "ColorComposite"

    def to_integer(self, bits=16):
        """
        The display-order picture as uint8 or uint16 (rounded).

        Parameters
        ----------
        bits : {8, 16}, optional
            Bits per channel.

        Returns
        -------
        numpy.ndarray
            ``(ny, nx, 3)``, row 0 at the top, [0, 1] scaled to the full range.

        Raises
        ------
        ValueError
            When ``bits`` is neither 8 nor 16.
        """
        if bits not in (8, 16):
            raise ValueError(f"bits={bits!r}: expected 8 or 16")
        top = np.float32(255 if bits == 8 else 65535)
        dtype = np.uint8 if bits == 8 else np.uint16
        data = self.data
        ny, nx = self.shape
        out = np.empty((ny, nx, 3), dtype=dtype)

        def block(rows):  # display rows a:b are FITS rows ny-b:ny-a, upside down
            source = data[:, ny - rows.stop : ny - rows.start][:, ::-1]
            scaled = np.multiply(source, top, out=np.empty(source.shape, np.float32))
            scaled += np.float32(0.5)
            for channel in range(3):  # truncation of x + 0.5: rounding; channel by channel into place
                np.copyto(out[rows, :, channel], scaled[channel], casting="unsafe")

        run_blocks(block, (ny, nx), resolve_threads(None))
        return out

    def write(self, path, *, bits=16, overwrite=False, quality=92):
        """
        Write the picture; the format follows the suffix.

        ``.tif``/``.tiff``: 8- or 16-bit RGB TIFF (tifffile), the WCS header
        in the image description; ``.png``: 8- or 16-bit RGB PNG, the WCS in
        a text chunk; ``.jpg``/``.jpeg``: 8-bit quick look; ``.fits``/``.fit``:
        a float32 ``(3, ny, nx)`` cube with the WCS. AVM tags are added to
        PNG and TIFF when ``pyavm`` is installed. The write is atomic and
        never replaces a file unless ``overwrite``.

        Parameters
        ----------
        path : str or path-like
            The file written; its suffix chooses the format.
        bits : {8, 16}, optional
            Bits per channel of a TIFF or PNG (JPEG is always 8, FITS float32).
        overwrite : bool, optional
            Replace an existing file.
        quality : int, optional
            JPEG quality (the other formats ignore it).

        Returns
        -------
        pathlib.Path
            ``path``.

        Raises
        ------
        astrophot.exceptions.FrameWriteError
            An unknown suffix, an existing file without ``overwrite``, a missing
            directory or no permission to write.
        """
        path = Path(path)
        suffix = path.suffix.lower()
        writers = {".tif": _write_tiff, ".tiff": _write_tiff, ".png": _write_png, ".jpg": _write_jpeg}
        writers.update({".jpeg": _write_jpeg, ".fits": _write_fits, ".fit": _write_fits, ".fts": _write_fits})
        if suffix not in writers:
            raise FrameWriteError(f"{path}: unknown picture format {suffix!r}; use .tif, .png, .jpg or .fits")
        if path.exists() and not overwrite:
            raise FrameWriteError(f"{path}: exists (use overwrite=True to replace it)")
        if not path.parent.is_dir():
            raise FrameWriteError(f"{path}: directory {path.parent} does not exist")
        try:
            with atomic_path(path, overwrite=overwrite) as tmp:
                writers[suffix](self, tmp, bits=bits, quality=quality)
        except FileExistsError:
            raise FrameWriteError(f"{path}: exists (use overwrite=True to replace it)") from None
        except PermissionError as exc:
            raise FrameWriteError(f"{path}: cannot write ({exc.strerror})") from None
        return path

    def wcs_header(self):
        """
        The WCS as a FITS header (empty without one).

        Returns
        -------
        `~astropy.io.fits.Header`
            ``wcs.to_header(relax=True)``, or an empty header.
        """
        return fits.Header() if self.wcs is None else self.wcs.to_header(relax=True)

    def __repr__(self):
        return f"<ColorComposite {self.shape} stretch={self.meta.get('stretch')!r}>"


# ----------------------------------------------------------------------
# writers
def _avm(picture, tmp, suffix):
    try:
        from pyavm import AVM
    except ImportError:
        return
    if picture.wcs is None:
        return
    try:
        avm = AVM.from_wcs(picture.wcs, shape=picture.shape)
        tagged = Path(f"{tmp}.avm{suffix}")
        avm.embed(str(tmp), str(tagged))
        tagged.replace(tmp)
    except Exception as exc:  # AVM is optional metadata: the picture stays valid without it
        log.debug("AVM tags not embedded: %s", exc)


def _write_tiff(picture, tmp, *, bits, quality):
    import tifffile

    description = picture.wcs_header().tostring(sep="\n")
    tifffile.imwrite(tmp, picture.to_integer(bits), photometric="rgb", description=description, metadata=None)
    _avm(picture, tmp, ".tif")


def _png_chunk(kind, payload):
    body = kind + payload
    return struct.pack(">I", len(payload)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)


def _filter_rows(rows, previous, bpp):
    """
    PNG-filter a block of scanlines, each with the filter that makes it smallest.

    All five filters (None, Sub, Up, Average, Paeth; PNG spec 9.2-9.4) are
    computed on the raw bytes at once and the one with the least sum of
    absolute signed bytes chosen per row (libpng's adaptive heuristic).
    ``previous`` is the raw scanline above the block (zeros for the first).
    Returns the rows with their filter-type byte in front.
    """
    h, w = rows.shape
    x = rows.astype(np.int16)
    up = np.empty_like(x)
    up[0] = previous
    up[1:] = x[:-1]
    left = np.zeros_like(x)  # the byte one pixel to the left (zeros entering)
    left[:, bpp:] = x[:, :-bpp]
    upleft = np.zeros_like(x)
    upleft[:, bpp:] = up[:, :-bpp]
    # Paeth: p = left + up - upleft; the nearest of left, up, upleft (in that order on ties)
    db, da = up - upleft, left - upleft  # p - left, p - up
    pa, pb, pc = np.abs(db), np.abs(da), np.abs(da + db)
    paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
    candidates = np.empty((5, h, w), dtype=np.uint8)  # differences modulo 256 (unsafe casts)
    candidates[0] = rows
    np.subtract(x, left, out=candidates[1], casting="unsafe")
    np.subtract(x, up, out=candidates[2], casting="unsafe")
    left += up
    left >>= 1
    np.subtract(x, left, out=candidates[3], casting="unsafe")
    np.subtract(x, paeth, out=candidates[4], casting="unsafe")
    # |signed byte|: abs in int8 leaves -128 as -128, which read as uint8 is the right 128
    cost = np.abs(candidates.view(np.int8)).view(np.uint8).sum(axis=2, dtype=np.int64)
    choice = cost.argmin(axis=0)
    out = np.empty((h, w + 1), dtype=np.uint8)
    out[:, 0] = choice
    out[:, 1:] = candidates[choice, np.arange(h)]
    return out


def _png_idat(rows, bpp, *, level=1, block=128, retrial=8):
    """
    The zlib stream of the filtered scanlines, made block by block (a few MB of temporaries).

    Every ``retrial``-th block is compressed both adaptively filtered and unfiltered (on
    copies of the compressor, flushed to a byte boundary) and the smaller kept; the blocks
    between follow its choice (compressed once, and not filtered at all when unfiltered
    won): on noise-dominated pictures the filters' heuristic can lose a few percent to no
    filter. Level 1: on filtered 4008x2672 pictures levels 4-6 were 3-6x slower for 1-17 % less.
    """
    compressor = zlib.compressobj(level)
    previous = np.zeros(rows.shape[1], dtype=np.int16)
    parts = []
    use_filters = True
    for index, start in enumerate(range(0, rows.shape[0], block)):
        chunk = rows[start : start + block]
        kinds = (True, False) if index % retrial == 0 else (use_filters,)
        best = None
        for kind in kinds:
            if kind:
                candidate = _filter_rows(chunk, previous, bpp)
            else:
                candidate = np.hstack([np.zeros((len(chunk), 1), np.uint8), chunk])
            trial = compressor.copy() if len(kinds) > 1 else compressor
            out = trial.compress(candidate.tobytes()) + trial.flush(zlib.Z_SYNC_FLUSH)
            if best is None or len(out) < len(best[0]):
                best = (out, trial, kind)
        parts.append(best[0])
        compressor, use_filters = best[1], best[2]
        previous = chunk[-1].astype(np.int16)
    parts.append(compressor.flush())
    return b"".join(parts)


def _write_png(picture, tmp, *, bits, quality):
    """A PNG written directly (8 or 16 bits per channel; Pillow writes 16-bit RGB only as 8), rows filtered."""
    image = picture.to_integer(bits)
    ny, nx, _ = image.shape
    if bits == 16:
        image = image.astype(">u2")
    rows = image.reshape(ny, -1).view(np.uint8)
    header = struct.pack(">IIBBBBB", nx, ny, bits, 2, 0, 0, 0)
    text = b"FITS WCS\x00" + picture.wcs_header().tostring().encode("latin-1")
    idat = _png_idat(rows, 3 * bits // 8)
    with open(tmp, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n")
        handle.write(_png_chunk(b"IHDR", header))
        handle.write(_png_chunk(b"tEXt", text))
        handle.write(_png_chunk(b"IDAT", idat))
        handle.write(_png_chunk(b"IEND", b""))
    _avm(picture, tmp, ".png")


def _write_jpeg(picture, tmp, *, bits, quality):
    from PIL import Image

    Image.fromarray(picture.to_integer(8), mode="RGB").save(tmp, format="JPEG", quality=int(quality))


def _write_fits(picture, tmp, *, bits, quality):
    header = picture.wcs_header()
    for index, channel in enumerate(picture.meta.get("channels", [])):
        header[f"APCHAN{index + 1}"] = (str(channel.get("filter")), f"{'RGB'[index]}: {channel.get('file')}")[
            :2
        ]
    header["APSTRTCH"] = str(picture.meta.get("stretch"))
    header["APPROVID"] = str(picture.provenance.id)
    hdu = fits.PrimaryHDU(picture.data, header=header)
    hdu.writeto(tmp, overwrite=True)


# ----------------------------------------------------------------------
# orientation
def _dihedral():
    for swap in (False, True):
        for sx in (1, -1):
            for sy in (1, -1):
                m = np.array([[0, 1], [1, 0]]) if swap else np.eye(2, dtype=int)
                yield swap, sx, sy, np.diag([sx, sy]) @ m


def _north_east(wcs, shape):
    from astropy.coordinates import SkyCoord

    ny, nx = shape
    cx, cy = (nx - 1) / 2, (ny - 1) / 2
    centre = wcs.pixel_to_world(cx, cy)
    step = 10 * np.sqrt(abs(np.linalg.det(wcs.pixel_scale_matrix)))
    ra, dec = centre.spherical.lon.deg, centre.spherical.lat.deg
    north = SkyCoord(ra, min(dec + step, 89.999), unit="deg", frame=centre.frame)
    east = SkyCoord(ra + step / max(np.cos(np.radians(dec)), 1e-3), dec, unit="deg", frame=centre.frame)
    vectors = []
    for point in (north, east):
        x, y = wcs.world_to_pixel(point)
        v = np.array([float(x) - cx, float(y) - cy])
        vectors.append(v / np.hypot(*v))
    return vectors


def _orient(data, wcs):
    """Turn ``data`` (3, ny, nx) and its WCS so that north is +y and east -x; returns (data, wcs, record)."""
    if wcs is None:
        return data, None, {"north_up": False, "reason": "no celestial WCS"}
    if wcs.sip is not None or getattr(wcs, "cpdis1", None) is not None:
        return data, wcs, {"north_up": False, "reason": "distorted (SIP) WCS kept as it is"}
    north, east = _north_east(wcs, data.shape[1:])
    best = max(_dihedral(), key=lambda t: (t[3] @ north)[1] - (t[3] @ east)[0])
    swap, sx, sy, matrix = best
    if swap:
        data = data.transpose(0, 2, 1)
    if sx < 0:
        data = data[:, :, ::-1]
    if sy < 0:
        data = data[:, ::-1, :]
    ny, nx = data.shape[1:]
    new = wcs.deepcopy()
    old_shape = (nx, ny) if not swap else (ny, nx)
    centre_old = (np.array(old_shape[::-1][::-1], float) + 1) / 2  # (nx_old + 1)/2, (ny_old + 1)/2
    centre_new = (np.array([nx, ny], float) + 1) / 2
    cd = wcs.pixel_scale_matrix @ np.linalg.inv(matrix)
    new.wcs.crpix = centre_new + matrix @ (np.asarray(wcs.wcs.crpix) - centre_old)
    if new.wcs.has_cd():
        new.wcs.cd = cd
    else:
        new.wcs.pc = cd
        new.wcs.cdelt = [1.0, 1.0]
    new.pixel_shape = (nx, ny)
    new.wcs.set()
    record = {"north_up": True, "transposed": bool(swap), "flip_x": bool(sx < 0), "flip_y": bool(sy < 0)}
    return np.ascontiguousarray(data), new, record


# ----------------------------------------------------------------------
# inputs, palettes and balance
def _canonical(name):
    from astrophot.instruments.itelescope import UnknownFilterError, get_filter

    try:
        return get_filter(name).name
    except UnknownFilterError:
        return None


def _assign(frames, palette):
    """The frames for red, green and blue: as given, or picked by filter name for a palette."""
    frames = [f for f in frames if f is not None]
    if palette is None:
        if len(frames) != 3:
            raise ValueError(f"make_color_composite needs three frames without a palette, not {len(frames)}")
        return frames
    key = {p.lower(): p for p in PALETTES}.get(str(palette).lower())
    if key is None:
        raise ValueError(f"palette={palette!r}: expected one of {sorted(PALETTES)}")
    by_filter = {}
    for frame in frames:
        by_filter.setdefault(_canonical(frame.filter), frame)
    out = []
    for wanted in PALETTES[key]:
        if wanted not in by_filter:
            seen = {frame_name(f): f.filter for f in frames}
            raise ValueError(f"palette {key} needs a {wanted} frame; the frames' filters are {seen}")
        out.append(by_filter[wanted])
    return out


def _channel(obj, out=None):
    """The channel as float32 (into ``out`` if given), its bad pixels (non-finite or masked) set to 0."""
    data = np.asarray(obj.data)
    if out is None:
        out = np.empty(data.shape, np.float32)
    if out.shape != data.shape:
        raise FrameMismatchError(f"{frame_name(obj)}: shape {data.shape}, the other channels' {out.shape}")
    np.copyto(out, data, casting="unsafe")
    bad = ~np.isfinite(out)
    if obj.mask is not None:
        bad |= np.asarray(obj.mask, bool)
    if bad.all():
        raise AnalysisError(f"{frame_name(obj)}: no finite, unmasked pixel in this colour channel")
    if bad.any():
        np.copyto(out, 0, where=bad)
    return out, bad


def _sky_sample(bad):
    """Which pixels the sky is measured on: every n-th good pixel (about 400 000 of them)."""
    flat = bad.reshape(-1)
    n_good = flat.size - int(np.count_nonzero(flat))
    step = max(1, n_good // 400_000)
    if n_good == flat.size:
        return slice(None, None, step)
    return np.flatnonzero(~flat)[::step]


def _skies(channels, bad):
    """Sky level and RMS of each channel: sigma-clipped median and std of the same sample of good pixels."""
    sample = _sky_sample(bad)
    values = np.stack([c.reshape(-1)[sample] for c in channels])
    # along an axis: astropy's compiled clipping, the three channels in one call
    _, median, std = sigma_clipped_stats(values, sigma=3.0, maxiters=10, axis=1)
    return [(float(m), float(s)) for m, s in zip(median, std)]


def _sky(channel, bad):
    return _skies([channel], bad)[0]


#: Side of the central window the white balance's stars are first taken from (pixels);
#: it doubles while fewer than ``_BALANCE_MIN_STARS`` stars are usable in it.
_BALANCE_SIDE = 768
_BALANCE_MIN_STARS = 50


def _window(shape, side):
    """The central ``side x side`` part of an image of ``shape`` (all of it when smaller)."""
    starts = [max(0, (n - side) // 2) for n in shape]
    return tuple(slice(s, min(n, s + side)) for s, n in zip(starts, shape))


def _balance_stars(rgb, bad, window):
    """
    ``find_stars`` on the mean of the channels in ``window`` (an `AnalysisError` is returned,
    not raised). The sky is not subtracted: find_stars measures and removes its own
    background, so this can run while the skies are measured.
    """
    from astrophot.analysis import find_stars

    ys, xs = window
    try:
        return find_stars(rgb[:, ys, xs].mean(axis=0), mask=bad[ys, xs], max_stars=300, cfa=False)
    except AnalysisError as exc:
        return exc


def _star_balance(rgb, bad, n_threads, sky=None, stars=None):
    """
    Channel factors making the median colour of unsaturated, isolated stars neutral.

    The stars are those of the central 768 x 768 pixels, the window doubled while fewer
    than 50 of them are usable there, up to the whole frame: a colour does not depend on
    where the star is, and finding stars in the window is fifteen times quicker on a
    4008 x 2672 frame. ``sky`` (per channel) is subtracted from the pixels measured, as
    from the whole picture. ``stars``: what `_balance_stars` found in the first window,
    when already done.
    """
    side = _BALANCE_SIDE
    while True:
        window = _window(bad.shape, side)
        whole = all(w.start == 0 and w.stop == n for w, n in zip(window, bad.shape))
        if stars is None:
            stars = _balance_stars(rgb, bad, window)
        try:
            if isinstance(stars, AnalysisError):
                raise stars
            result = _star_balance_in(
                rgb, bad, window, n_threads, sky, stars, min_kept=1 if whole else _BALANCE_MIN_STARS
            )
        except AnalysisError:
            if whole:
                raise
            result = None
        if result is not None:
            return result
        side, stars = 2 * side, None  # too few stars in the window: a larger one


def _star_balance_in(rgb, bad, window, n_threads, sky, stars, *, min_kept):
    import sep

    from astrophot.analysis import StarFlag

    ys, xs = window
    part = rgb[:, ys, xs]
    if sky is not None:
        part = part - np.asarray(sky, np.float32)[:, None, None]
    bad_bits = int(StarFlag.SATURATED | StarFlag.NEAR_MASKED | StarFlag.NEAR_EDGE | StarFlag.BLENDED)
    flags = np.asarray(stars["flags"], int)
    bright = np.asarray(stars["snr"], float) > 20
    keep = ((flags & bad_bits) == 0) & bright
    if keep.sum() < 10:  # a crowded field: blended stars too, rather than too few
        keep = ((flags & (bad_bits & ~int(StarFlag.BLENDED))) == 0) & bright
    if keep.sum() < 3:
        raise AnalysisError(f"white balance from stars: {int(keep.sum())} usable stars (need 3)")
    if keep.sum() < min_kept:
        return None
    positions = np.column_stack([np.asarray(stars["x"], float)[keep], np.asarray(stars["y"], float)[keep]])
    radius = 2.0 * float(stars.meta.get("fwhm") or 3.0)
    # the apertures measured on the window widened by their radius (the pixels they reach)
    margin = int(np.ceil(radius)) + 2
    ny, nx = bad.shape
    wy = slice(max(0, ys.start - margin), min(ny, ys.stop + margin))
    wx = slice(max(0, xs.start - margin), min(nx, xs.stop + margin))
    if (wy, wx) != (ys, xs):
        part = rgb[:, wy, wx]
        if sky is not None:
            part = part - np.asarray(sky, np.float32)[:, None, None]
        positions = positions + [xs.start - wx.start, ys.start - wy.start]
    x, y = (np.ascontiguousarray(positions[:, i], dtype=np.float64) for i in (0, 1))
    # sep's exact overlap (subpix=0) is photutils' aperture_photometry(method="exact")
    fluxes = np.array(
        [sep.sum_circle(np.ascontiguousarray(c, np.float64), x, y, radius, subpix=0)[0] for c in part]
    )
    fluxes = fluxes[:, fluxes.mean(axis=0) > 0]
    factors = np.ones(3)
    for _ in range(10):  # the mean colour moves with the factors: iterate to the fixed point
        balanced = fluxes * factors[:, None]
        factors /= np.median(balanced / balanced.mean(axis=0)[None], axis=1)
        factors /= np.mean(factors)
    return factors, int(keep.sum())


def _balance(rgb, bad, white_balance, n_threads, sky=None, stars=None):
    if white_balance is None or white_balance is False:
        return np.ones(3), {"white_balance": None}
    if isinstance(white_balance, str):
        if white_balance != "stars":
            raise ValueError(f"white_balance={white_balance!r}: expected 'stars', None or three factors")
        factors, n = _star_balance(rgb, bad, n_threads, sky, stars)
        return factors, {"white_balance": "stars", "n_stars": n, "factors": factors.tolist()}
    factors = np.asarray(white_balance, dtype=float)
    if factors.shape != (3,) or not np.all(factors > 0):
        raise ValueError(f"white_balance={white_balance!r}: expected three positive factors")
    return factors, {"white_balance": "given", "factors": factors.tolist()}


def _stretch(rgb, stretch, options, noise, n_threads=1):
    if stretch not in STRETCHES:
        raise ValueError(f"stretch={stretch!r}: expected one of {sorted(STRETCHES)}")
    options = dict(options or {})
    if stretch == "auto":
        options.setdefault("noise", noise)
    defaults = {"lupton": LUPTON_DEFAULTS, "stiff": STIFF_DEFAULTS}.get(stretch, {})
    unknown = set(options) - set(defaults) - {"noise", "black", "white", "a", "sky_level"}
    if unknown:
        raise TypeError(f"stretch {stretch!r} takes no option(s) {sorted(unknown)}")
    used = {**defaults, **options}
    return STRETCHES[stretch](rgb, **used, n_threads=n_threads), used


def _inputs(red, green, blue, palette, luminance, line, resample, parallel):
    frames = [as_frame(f, purpose="make_color_composite") for f in (red, green, blue) if f is not None]
    frames = _assign(frames, palette)
    extra = {}
    if luminance is not None:
        extra["luminance"] = as_frame(luminance, purpose="make_color_composite")
    if line is not None:
        extra["line"] = as_frame(line, purpose="make_color_composite")
    ref = frames[0]
    for index, frame in enumerate(frames[1:] + list(extra.values())):
        try:
            moved = same_grid_or_resample(
                ref, frame, resample=resample, purpose="make_color_composite", parallel=parallel
            )
        except FrameMismatchError as exc:
            raise FrameMismatchError(f"{exc}; or call make_color_composite(..., resample=True)") from None
        if index < len(frames) - 1:
            frames[index + 1] = moved
        else:
            extra[list(extra)[index - len(frames) + 1]] = moved
    return frames, extra


def make_color_composite(
    red,
    green=None,
    blue=None,
    *,
    stretch="auto",
    stretch_options=None,
    palette=None,
    luminance=None,
    line=None,
    line_weight=1.0,
    white_balance="stars",
    neutralize_background=True,
    north_up=True,
    resample=False,
    parallel=None,
):
    """
    Make a colour picture from three frames on one grid.

    Parameters
    ----------
    red, green, blue : `~astrophot.CalibratedFrame`, a combination product, `~astropy.nddata.CCDData` or 2-D array
        The channels, on one pixel grid. With a ``palette`` they are picked
        by their FILTER names instead of their order (two frames suffice for
        HOO).
    stretch : {'auto', 'lupton', 'stiff', 'linear', 'log'}, optional
        ``'lupton'``: astropy's `~astropy.visualization.make_lupton_rgb`
        (options ``Q``, ``stretch``, ``minimum``); ``'stiff'``: black and
        white quantiles, gamma, luminance gamma factor and colour saturation
        (options ``black``, ``white``, ``gamma``, ``gamma_factor``,
        ``saturation``; defaults 0.001, 0.999, 2.2, 1.0, 1.0 as STIFF's);
        ``'linear'``, ``'log'`` (``black``, ``white`` quantile, ``a``);
        ``'auto'``: black point from the sky noise, white at the 99.95 %
        quantile, an asinh that lifts the faint parts. All but lupton keep
        the hue of bright star cores (the channels are scaled together and
        divided by their largest instead of clipped white).
    stretch_options : dict, optional
        The stretch's parameters (see above).
    palette : {'RGB', 'LRGB', 'HaRGB', 'SHO', 'HOO'}, optional
        Filters to channels: RGB (Red, Green, Blue), SHO (SII, Ha, OIII),
        HOO (Ha, OIII, OIII); LRGB also takes ``luminance``, HaRGB ``line``.
    luminance : frame, optional
        A luminance frame: the picture's brightness comes from it (LRGB).
    line : frame, optional
        A continuum-subtracted line frame (`subtract_continuum`) added to
        red times ``line_weight`` (HaRGB).
    line_weight : float, optional
        The factor of ``line`` added to red.
    white_balance : 'stars', None or sequence of 3 floats, optional
        ``'stars'``: the median colour of unsaturated, isolated stars made
        neutral; explicit channel factors; or None.
    neutralize_background : bool, optional
        Subtract each channel's sky level so the background is grey.
    north_up : bool, optional
        Turn the picture so north is up and east left (from the WCS).
    resample : bool, optional
        Resample frames on other grids onto the red frame's (needs
        ``resample_frame``); otherwise they are refused.
    parallel : None, bool or int, optional
        Threads for the per-channel work.

    Returns
    -------
    ColorComposite
        The stretched picture with the red frame's celestial WCS (turned with it
        when ``north_up``), its channels, stretch, sky levels and balance in
        ``meta``, and one ``make_color_composite`` provenance step.

    Raises
    ------
    astrophot.exceptions.FrameMismatchError
        Frames on different grids (resample them onto one grid), or of
        different shapes.
    astrophot.exceptions.AnalysisError
        A channel with no finite pixel; too few stars for the white balance.

    See Also
    --------
    subtract_continuum : The line frame of an HaRGB picture.
    astrophot.stack_frames : The frames this is meant for.

    Examples
    --------
    >>> import numpy as np
    >>> from astrophot import make_color_composite
    >>> from astrophot.datasets import make_continuum_pair
    >>> ha, red, _ = make_continuum_pair(seed=1)
    >>> picture = make_color_composite(red, ha, ha, white_balance=None)
    >>> picture.rgb.shape, float(picture.rgb.max()) <= 1
    ((300, 300, 3), True)
    """
    n_threads = resolve_threads(parallel)
    frames, extra = _inputs(red, green, blue, palette, luminance, line, resample, parallel)
    record = start_step(
        "make_color_composite",
        parameters={
            "stretch": stretch,
            "stretch_options": stretch_options,
            "palette": palette,
            "line_weight": line_weight,
            "white_balance": white_balance
            if isinstance(white_balance, (str, type(None)))
            else list(white_balance),
            "neutralize_background": neutralize_background,
            "north_up": north_up,
        },
        inputs={"red": frames[0], "green": frames[1], "blue": frames[2], **extra},
    )
    rgb = np.empty((3, *np.shape(frames[0].data)), dtype=np.float32)
    channels = thread_map(lambda item: _channel(*item), list(zip(frames, rgb)), n_threads=n_threads)
    bad = channels[0][1] | channels[1][1] | channels[2][1]
    if "line" in extra:
        line_data, _ = _channel(extra["line"])
        rgb[0] += np.float32(line_weight) * line_data
    stars = None
    if isinstance(white_balance, str) and white_balance == "stars":
        # the white balance's stars are found while the skies are measured (on two threads)
        window = _window(bad.shape, _BALANCE_SIDE)
        stars, skies = thread_map(
            lambda job: job(),
            [lambda: _balance_stars(rgb, bad, window), lambda: _skies(rgb, bad)],
            n_threads=n_threads,
        )
    else:
        skies = _skies(rgb, bad)
    sky = np.array([s[0] for s in skies], dtype=np.float32) if neutralize_background else None
    factors, balance = _balance(rgb, bad, white_balance, n_threads, sky, stars)
    _neutralise(rgb, sky, factors, bad, n_threads)
    noise = np.array([s[1] for s in skies]) * factors
    picture, used = _stretch(rgb, stretch, stretch_options, noise, n_threads)
    if "luminance" in extra:
        picture = _apply_luminance(picture, extra["luminance"], stretch, stretch_options, bad, n_threads)
    wcs = frames[0].wcs.celestial if frames[0].wcs is not None and frames[0].wcs.has_celestial else None
    orientation = {"north_up": False, "reason": "north_up=False"}
    if north_up:
        picture, wcs, orientation = _orient(picture, wcs)
    meta = {
        "channels": [{"file": frame_name(f), "filter": f.filter} for f in frames],
        "stretch": stretch,
        "stretch_options": {k: v for k, v in used.items() if k != "noise"},
        "sky": [s[0] for s in skies],
        "noise": [s[1] for s in skies],
        **balance,
        "orientation": orientation,
        "palette": palette,
    }
    out = ColorComposite(picture, wcs=wcs, meta=meta)
    step = record.step(output=None, outcome={"orientation": orientation, **balance})
    from astrophot.provenance import Provenance

    out.provenance = Provenance.new((step,))
    return out


def _neutralise(rgb, sky, factors, bad, n_threads):
    """In place, block by block: ``rgb`` minus the sky (if given), times the factors, 0 at bad pixels."""
    sky = None if sky is None else np.asarray(sky, np.float32)[:, None, None]
    gains = np.asarray(factors, dtype=np.float32)[:, None, None]
    scale = not np.all(gains == 1)
    masked = bool(bad.any())

    def block(rows):
        x = rgb[:, rows]
        if sky is not None:
            x -= sky
        if scale:
            x *= gains
        if masked:
            np.copyto(x, 0, where=bad[None, rows])

    run_blocks(block, rgb.shape[1:], n_threads)


def _apply_luminance(picture, luminance, stretch, options, bad, n_threads=1):
    """LRGB: keep the colour of ``picture``, take the brightness from the stretched luminance frame."""
    from astrophot.combination._stretch import keep_hue

    lum, lum_bad = _channel(luminance)
    sky, _ = _sky(lum, bad | lum_bad)
    lum -= np.float32(sky)
    _, noise = _sky(lum, bad | lum_bad)
    stack = np.stack([lum, lum, lum])
    lum_picture, _ = _stretch(stack, stretch, options, np.full(3, noise), n_threads)
    target = lum_picture[0]
    current = picture.mean(axis=0)
    return keep_hue(picture, current, target, out=picture, n_threads=n_threads)
