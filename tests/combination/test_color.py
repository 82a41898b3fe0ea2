# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""make_color_composite: stretches against astropy, balance against known gains, files read back."""

import numpy as np
import pytest
from astropy.coordinates import SkyCoord

from astrophot import make_color_composite, read_frame
from astrophot.datasets import make_rgb_field, make_wcs
from astrophot.exceptions import AnalysisError, FrameMismatchError, FrameWriteError


@pytest.fixture(scope="module")
def field():
    return make_rgb_field(seed=3)


@pytest.fixture(scope="module")
def sdss(shared_data):
    folder = shared_data / "sdss_gri"
    if not folder.is_dir():
        pytest.skip(f"{folder} is absent")
    return [read_frame(folder / f"reprojected_sdss_{band}.fits.bz2") for band in "irg"]


def test_lupton_equals_astropy(sdss):
    from astropy.visualization import make_lupton_rgb

    i, r, g = sdss
    for options in ({"Q": 10, "stretch": 0.5}, {"Q": 8, "stretch": 5, "minimum": 0.01}):
        picture = make_color_composite(
            i,
            r,
            g,
            stretch="lupton",
            stretch_options=options,
            white_balance=None,
            neutralize_background=False,
            north_up=False,
        )
        reference = make_lupton_rgb(i.data, r.data, g.data, **options)
        mine = picture.to_integer(8)[::-1]  # display order back to FITS order
        assert mine.shape == reference.shape
        assert np.abs(mine.astype(int) - reference.astype(int)).max() <= 1


def _star_colours(picture_linear, truth):
    from photutils.aperture import CircularAperture, aperture_photometry

    aperture = CircularAperture(np.column_stack([truth["x"], truth["y"]]), r=6)
    flux = np.array([np.asarray(aperture_photometry(c, aperture)["aperture_sum"]) for c in picture_linear])
    return np.median(flux / flux.mean(axis=0), axis=1)


def test_white_balance_neutral():
    # stars within +/-5 % of grey: the ~40 stars the balance uses then have a median colour grey to < 1 %
    frames, truth = make_rgb_field(seed=3, colour_spread=0.05)
    balanced = make_color_composite(
        *frames, stretch="linear", stretch_options={"white": 1.0, "black": [0, 0, 0]}, north_up=False
    )
    factors = np.array(balanced.meta["factors"])
    # the factors undo the gains (up to a common scale)
    expected = 1 / np.array(truth["gains"])
    assert np.allclose(factors / factors.mean(), expected / expected.mean(), rtol=0.02)
    # and the median star colour of the balanced (linear) picture is neutral within 2 %
    colours = _star_colours(balanced.data, truth)
    assert np.all(np.abs(colours - 1) < 0.02), colours
    unbalanced = make_color_composite(
        *frames,
        stretch="linear",
        stretch_options={"white": 1.0, "black": [0, 0, 0]},
        white_balance=None,
        north_up=False,
    )
    assert np.abs(_star_colours(unbalanced.data, truth) - 1).max() > 0.15


def _bright_star(truth):
    return int(np.argmax(truth["flux"]))


def _rotated(frames, rotation):
    out = []
    for frame in frames:
        copy = frame.copy()
        copy.wcs = make_wcs(SkyCoord(313.0, 44.3, unit="deg"), frame.shape, 1.0, rotation=rotation)
        out.append(copy)
    return out


@pytest.mark.parametrize("rotation", [0.0, 90.0, 180.0])
def test_tiff_and_png_read_back_north_up(tmp_path, field, rotation):
    import tifffile
    from PIL import Image

    frames, truth = field
    frames = _rotated(frames, rotation)
    picture = make_color_composite(*frames)
    assert picture.meta["orientation"]["north_up"]
    cd = picture.wcs.pixel_scale_matrix
    assert cd[1, 1] > 0 and cd[0, 0] < 0  # north +y, east -x
    star = _bright_star(truth)
    world = frames[0].wcs.pixel_to_world(truth["x"][star], truth["y"][star])
    x, y = picture.wcs.world_to_pixel(world)
    ny, nx = picture.shape
    row, col = int(round(ny - 1 - float(y))), int(round(float(x)))
    tif = picture.write(tmp_path / "p.tif")
    back = tifffile.imread(tif)
    assert back.shape == (ny, nx, 3) and back.dtype == np.uint16
    assert np.array_equal(back, picture.to_integer(16))
    window = back[row - 2 : row + 3, col - 2 : col + 3].sum(axis=2)
    assert window.max() == back[max(row - 8, 0) : row + 9, max(col - 8, 0) : col + 9].sum(axis=2).max()
    assert window.max() > 3 * np.median(back.sum(axis=2))
    for bits in (8, 16):
        png = picture.write(tmp_path / f"p{bits}.png", bits=bits)
        image = Image.open(png)
        assert image.size == (nx, ny)
        if bits == 8:
            pixels = np.asarray(image)
            assert pixels.dtype == np.uint8 and pixels.shape == (ny, nx, 3)
            assert np.array_equal(pixels, picture.to_integer(8))
        else:
            assert image.mode.startswith("RGB") or image.info.get("FITS WCS")
            assert np.array_equal(_read_png(png)[0], picture.to_integer(16))


def _unfilter(raw, bpp):
    """PNG spec 9.2-9.4 decoded the plain way, byte by byte (independent of the writer's numpy filters)."""
    ny, width = raw.shape[0], raw.shape[1] - 1
    out = np.zeros((ny, width), dtype=np.int64)
    previous = np.zeros(width, dtype=np.int64)
    for row in range(ny):
        kind, line = int(raw[row, 0]), raw[row, 1:].astype(np.int64)
        current = np.zeros(width, dtype=np.int64)
        for i in range(width):
            a = current[i - bpp] if i >= bpp else 0
            b = previous[i]
            c = previous[i - bpp] if i >= bpp else 0
            if kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            else:
                pred = (0, a, b, (a + b) // 2)[kind]
            current[i] = (line[i] + pred) % 256
        out[row] = previous = current
    return out.astype(np.uint8)


def _read_png(path):
    """Independent decoder of an 8- or 16-bit RGB PNG (Pillow reads 16-bit RGB as 8-bit): (pixels, filters)."""
    import struct
    import zlib

    blob = path.read_bytes()
    pos, idat, size = 8, b"", None
    while pos < len(blob):
        (length,) = struct.unpack(">I", blob[pos : pos + 4])
        kind = blob[pos + 4 : pos + 8]
        body = blob[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            size, bits = struct.unpack(">II", body[:8]), body[8]
            assert body[9] == 2
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    nx, ny = size
    bpp = 3 * bits // 8
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(ny, 1 + nx * bpp)
    assert set(np.unique(raw[:, 0])) <= {0, 1, 2, 3, 4}
    pixels = _unfilter(raw, bpp)
    if bits == 16:
        pixels = pixels.view(">u2").astype(np.uint16)
    return pixels.reshape(ny, nx, 3), raw[:, 0]


def test_png_rows_filtered_smaller_and_exact(tmp_path):
    """A smooth picture: every filter type used, read back exact, far smaller than unfiltered rows."""
    import zlib

    from PIL import Image

    from astrophot.combination import ColorComposite

    ny, nx = 40, 64
    yy, xx = np.mgrid[0:ny, 0:nx]
    rng = np.random.default_rng(5)
    data = np.stack([xx / nx, yy / ny, (xx + yy) / (nx + ny)]) * 0.8
    data[:, :10] = rng.uniform(0, 1, (3, 10, nx))  # noisy rows at the bottom: another filter wins there
    picture = ColorComposite(data.astype(np.float32))
    for bits in (8, 16):
        path = picture.write(tmp_path / f"s{bits}.png", bits=bits)
        pixels, filters = _read_png(path)
        expected = picture.to_integer(bits)
        assert np.array_equal(pixels, expected)
        assert len(set(filters.tolist())) >= 2
        rows = expected.astype(">u2" if bits == 16 else np.uint8).reshape(ny, -1).view(np.uint8)
        unfiltered = len(zlib.compress(np.hstack([np.zeros((ny, 1), np.uint8), rows]).tobytes(), 9))
        assert path.stat().st_size < 0.8 * unfiltered
        with Image.open(path) as image:  # libpng-backed reader: the high bytes of 16 bits
            back = np.asarray(image.convert("RGB"))
        assert np.array_equal(back, expected if bits == 8 else (expected >> 8).astype(np.uint8))


def test_fits_cube_and_jpeg(tmp_path, field):
    from astropy.io import fits
    from astropy.wcs import WCS
    from PIL import Image

    frames, _ = field
    picture = make_color_composite(*frames, stretch="stiff")
    path = picture.write(tmp_path / "p.fits")
    with fits.open(path) as hdul:
        assert hdul[0].data.shape == (3, *picture.shape)
        wcs = WCS(hdul[0].header).celestial
        assert np.allclose(wcs.pixel_scale_matrix, picture.wcs.pixel_scale_matrix)
        assert hdul[0].header["APCHAN1"] == "Red"
    jpg = picture.write(tmp_path / "p.jpg")
    assert Image.open(jpg).size == picture.shape[::-1]
    with pytest.raises(FrameWriteError, match="exists"):
        picture.write(path)
    with pytest.raises(FrameWriteError, match="format"):
        picture.write(tmp_path / "p.bmp")
    with pytest.raises(FrameWriteError, match="does not exist"):
        picture.write(tmp_path / "nowhere" / "p.tif")


@pytest.mark.parametrize("stretch", ["auto", "stiff", "linear", "log"])
def test_stretches_keep_hue_in_cores(field, stretch):
    frames, truth = field
    picture = make_color_composite(*frames, stretch=stretch, north_up=False)
    assert picture.data.min() >= 0 and picture.data.max() <= 1
    star = _bright_star(truth)
    core = picture.data[:, int(round(truth["y"][star])), int(round(truth["x"][star]))]
    colour = truth["colours"][:, star]
    # not white-clipped: the core keeps the star's colour ratios (within the noise)
    assert np.allclose(core / core.max(), colour / colour.max(), atol=0.06)


def test_palettes(field):
    frames, _ = field
    red, green, blue = frames
    shuffled = make_color_composite(blue, red, green, palette="RGB", white_balance=None, north_up=False)
    ordered = make_color_composite(red, green, blue, white_balance=None, north_up=False)
    assert np.array_equal(shuffled.data, ordered.data)
    ha, oiii, sii = (f.copy() for f in frames)
    for frame, name in ((ha, "Ha"), (oiii, "OIII"), (sii, "SII")):
        frame.meta["FILTER"] = name
    sho = make_color_composite(oiii, ha, sii, palette="SHO", white_balance=None, north_up=False)
    assert [c["filter"] for c in sho.meta["channels"]] == ["SII", "Ha", "OIII"]
    hoo = make_color_composite(oiii, ha, palette="HOO", white_balance=None, north_up=False)
    assert np.array_equal(hoo.data[1], hoo.data[2])
    with pytest.raises(ValueError, match="needs a SII frame"):
        make_color_composite(red, green, blue, palette="SHO")
    lrgb = make_color_composite(red, green, blue, palette="LRGB", luminance=green, north_up=False)
    assert lrgb.data.shape == ordered.data.shape
    line = green.copy()
    hargb = make_color_composite(
        red, green, blue, palette="HaRGB", line=line, white_balance=None, north_up=False
    )
    assert hargb.meta["sky"][0] > ordered.meta["sky"][0]


def test_bad_inputs(field):
    frames, _ = field
    red, green, blue = frames
    moved = blue.copy()
    moved.wcs = make_wcs(SkyCoord(313.001, 44.3, unit="deg"), blue.shape, 1.0)
    with pytest.raises(FrameMismatchError, match="resample"):
        make_color_composite(red, green, moved)
    empty = blue.copy()
    empty.data[...] = np.nan
    with pytest.raises(AnalysisError, match="no finite"):
        make_color_composite(red, green, empty)
    with pytest.raises(ValueError, match="stretch"):
        make_color_composite(red, green, blue, stretch="fancy")
    with pytest.raises(TypeError, match="no option"):
        make_color_composite(red, green, blue, stretch="lupton", stretch_options={"gamma": 2})
    with pytest.raises(ValueError, match="three frames"):
        make_color_composite(red, green)
    small = blue[:50, :50]
    with pytest.raises(FrameMismatchError):
        make_color_composite(red, green, small)


def test_different_grids_refused_or_resampled_when_asked(field):
    """Blue on a shifted, rotated grid: refused by default with the fix in the message; resampled when asked."""
    from photutils.aperture import CircularAperture, aperture_photometry

    from astrophot import resample_frame
    from astrophot.combination._samegrid import _as_solved

    frames, truth = field
    red, green, blue = frames
    grid = make_wcs(SkyCoord(313.0, 44.3, unit="deg"), blue.shape, 1.0, rotation=20.0)
    grid.wcs.crpix = [grid.wcs.crpix[0] + 3.4, grid.wcs.crpix[1] - 2.2]
    grid.wcs.set()
    moved = resample_frame(_as_solved(blue), (grid, blue.shape))
    options = {"white_balance": None, "stretch": "linear", "north_up": False}
    with pytest.raises(FrameMismatchError, match=r"different grids .* resample_frame.*resample=True"):
        make_color_composite(red, green, moved, **options)
    reference = make_color_composite(red, green, blue, **options)
    picture = make_color_composite(red, green, moved, resample=True, **options)
    assert picture.shape == reference.shape
    good = np.all(picture.data > 0, axis=0)
    assert 0.9 < good.mean() < 1.0  # the corners the rotated grid does not cover are left black
    assert np.corrcoef(picture.data[2][good], reference.data[2][good])[0, 1] > 0.99
    ny, nx = blue.shape
    x, y = truth["x"], truth["y"]
    inside = (x > 15) & (x < nx - 16) & (y > 15) & (y < ny - 16)
    aperture = CircularAperture(np.column_stack([x, y])[inside], r=6)

    def blue_over_red(p):
        sums = [np.asarray(aperture_photometry(p.data[i], aperture)["aperture_sum"]) for i in (0, 2)]
        return sums[1] / sums[0]

    ratio = blue_over_red(picture) / blue_over_red(reference)
    assert abs(np.nanmedian(ratio) - 1) < 0.02  # star colours kept through the resampling


@pytest.mark.parametrize(("n_stars", "seed"), [(400, 5), (60, 6)])
def test_white_balance_from_a_central_window(n_stars, seed):
    # 1600 x 1600: the stars come from the central 768 x 768 window (400 stars: ~90 there),
    # doubled when fewer than 50 are usable there (60 stars: ~14, then the whole frame)
    frames, truth = make_rgb_field(shape=(1600, 1600), n_stars=n_stars, colour_spread=0.05, seed=seed)
    picture = make_color_composite(
        *frames, stretch="linear", stretch_options={"white": 1.0, "black": [0, 0, 0]}, north_up=False
    )
    factors = np.array(picture.meta["factors"])
    expected = 1 / np.array(truth["gains"])
    assert np.allclose(factors / factors.mean(), expected / expected.mean(), rtol=0.02)
    assert 3 <= picture.meta["n_stars"] < n_stars
