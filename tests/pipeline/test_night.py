# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The night runner on a simulated, zipped iTelescope night with a calibration library."""

import json
import multiprocessing
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from astrophot.frames import data_checksum
from astrophot.io import read_frame
from astrophot.pipeline import ConfigError, OutputLockedError, load_config, plan_night, process_night
from astrophot.pipeline._state import OutputLock

from .conftest import RUN, SHAPE, cli, copy_download, env

#: Frames only (the faults are about frames; the shared run covers the combined products).
FAST = [
    "cosmic_rays.enabled=false",
    "metadata.enabled=false",
    *(f"{stage}.enabled=false" for stage in ("grid", "stack", "continuum", "color")),
]


def test_run_cli_products_report_and_provenance(night, cli_run):
    proc, out, _ = cli_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "lights: 3 done" in proc.stdout
    # progress: not a terminal, so log lines per stage with counts
    assert "frames: 3/3" in proc.stderr and "report: 1/1" in proc.stderr
    summary = json.loads((out / "night.json").read_text())
    assert len(summary["frames"]) == 3
    raws = {Path(p).name: data_checksum(read_frame(p).data) for p in night.night.lights}
    for frame in summary["frames"]:
        assert frame["status"] == "done", frame
        solved = read_frame(frame["products"]["solved"])
        assert solved.wcs is not None and solved.wcs.has_celestial
        # the solved frame refers to the calibrated frame's pixels instead of a second copy (issue 16)
        calibrated = Path(frame["products"]["calibrated"])
        header = fits.getheader(frame["products"]["solved"])
        assert header["NAXIS"] == 0 and header["APPIXREF"] == f"../calibrated/{calibrated.name}"
        np.testing.assert_array_equal(solved.data, read_frame(calibrated).data)
        # the solution is the simulation's WCS (within a pixel at the centre)
        truth = night.night.truth_for(Path(frame["file"]).name).wcs
        ny, nx = SHAPE
        x, y = truth.world_to_pixel(solved.wcs.pixel_to_world(nx / 2, ny / 2))
        assert np.hypot(x - nx / 2, y - ny / 2) < 1.0
        # provenance reaches the raw light's checksum
        ancestors = solved.provenance.ancestors()
        assert raws[Path(frame["file"]).name] in {a.reference.sha256 for a in ancestors}
    # the library's masters were used, with reasons
    assert "bias" in summary["masters"] and "fits telescope T20" in summary["masters"]["bias"][1]
    # one pointing: no mosaic (a night on several pointings: test_night_mosaic.py)
    assert summary["stages"]["mosaic"]["status"] == "skipped"
    assert "one pointing" in summary["stages"]["mosaic"]["reason"]
    assert not summary["stages"]["mosaic"]["products"]
    _check_combined(night, out, summary, raws)
    # the plan of a rerun: everything up to date (read from the products' provenance), nothing run
    plan = plan_night(out.parent / "download", output=out, library=night.library, overrides=RUN)
    assert "lights to process: 3 (3 already calibrated and up to date)" in plan.describe()
    html = (out / "report" / "night.html").read_text()
    assert html.count("data:image/png;base64,") >= 4  # 3 thumbnails + the plots
    # the thumbnails are made by the frames' tasks (pixels in memory), the same picture the report
    # would make from the solved frame, and embedded as they are
    import base64

    from astrophot.analysis.report import make_thumbnail

    for frame in summary["frames"]:
        thumb = Path(frame["thumbnail"])
        assert thumb.parent == out / "report" / "thumbs" and thumb.name.endswith("-200px.png")
        assert thumb.read_bytes() == make_thumbnail(frame["products"]["solved"], size=200)
        assert base64.b64encode(thumb.read_bytes()).decode() in html
    assert "Masters used and why" in html and "stack.center" not in html  # config is YAML, not dotted
    assert (out / "astrophot-run.log").stat().st_size > 0
    assert (out / "config-used.yaml").exists()


def _centroid(data, x, y, half=3):
    """Intensity-weighted centroid in a box around (x, y), above the box's median."""
    ix, iy = int(round(x)), int(round(y))
    box = np.nan_to_num(data[iy - half : iy + half + 1, ix - half : ix + half + 1])
    box = np.clip(box - np.median(box), 0, None)
    yy, xx = np.mgrid[iy - half : iy + half + 1, ix - half : ix + half + 1]
    return (box * xx).sum() / box.sum(), (box * yy).sum() / box.sum()


def _bright_stars(night, name, wcs, shape, n=5, margin=8):
    """The brightest unsaturated true stars of a light, as pixels of ``wcs``, well inside ``shape``."""
    from astropy.coordinates import SkyCoord

    stars = night.night.truth_for(name).stars
    stars = stars[~np.asarray(stars["saturated"])]
    x, y = wcs.world_to_pixel(SkyCoord(stars["ra"], stars["dec"], unit="deg"))
    ny, nx = shape
    inside = (x > margin) & (x < nx - 1 - margin) & (y > margin) & (y < ny - 1 - margin)
    order = np.argsort(-np.asarray(stars["flux"], float)[inside])[:n]
    return x[inside][order], y[inside][order]


def _same_grid(a, b):
    """Same shape and the same sky at every pixel corner and the centre (to 1e-6 arcsec)."""
    assert a.data.shape == b.data.shape
    ny, nx = a.data.shape
    x, y = np.array([0, nx - 1, 0, nx - 1, nx / 2]), np.array([0, 0, ny - 1, ny - 1, ny / 2])
    separation = a.wcs.celestial.pixel_to_world(x, y).separation(b.wcs.celestial.pixel_to_world(x, y))
    assert separation.arcsec.max() < 1e-6


def _check_combined(night, out, summary, raws):
    """Per-filter stacks on one grid, the line image and the colour picture, back to every raw light."""
    from astrophot.io._sidecar import read_sidecar

    stages = summary["stages"]
    for stage in ("grid", "stack", "continuum", "color"):
        assert stages[stage]["status"] == "done", stages[stage]
    stacks = {Path(p).name: read_frame(p) for p in summary["products"]["stack"]}
    assert sorted(stacks) == ["stack-M31-Ha.fits", "stack-M31-Red.fits", "stack-M31-V.fits"]
    # one grid for the target, shared by every filter (no second resampling for line and colour)
    first = stacks["stack-M31-Ha.fits"]
    for stack in stacks.values():
        _same_grid(stack, first)
    # the stacks sit on the sky: true stars are where the grid's WCS puts them
    for name, stack in stacks.items():
        light = next(p for p in night.night.lights if f"-{name.split('-')[-1][:-5]}-" in p.name)
        xs, ys = _bright_stars(night, light.name, stack.wcs, stack.data.shape)
        assert len(xs) >= 3, name
        offsets = [np.hypot(*np.subtract(_centroid(stack.data, x, y), (x, y))) for x, y in zip(xs, ys)]
        assert np.median(offsets) < 0.5, (name, offsets)
    # the line image (Ha minus its continuum) on the same grid: the stars, continuum sources, cancel
    (line_path,) = summary["products"]["continuum"]
    line = read_frame(line_path)
    _same_grid(line, first)
    narrow = stacks["stack-M31-Ha.fits"]
    xs, ys = _bright_stars(
        night, next(p.name for p in night.night.lights if "-Ha-" in p.name), narrow.wcs, narrow.data.shape
    )
    for x, y in zip(xs, ys):
        ix, iy = int(round(x)), int(round(y))
        box = np.s_[iy - 3 : iy + 4, ix - 3 : ix + 4]
        star = np.nansum(narrow.data[box] - np.nanmedian(narrow.data))
        assert abs(np.nansum(line.data[box] - np.nanmedian(line.data))) < 0.2 * star
    # the colour picture: PNG and TIFF on the grid, its provenance back to every raw light
    pictures = sorted(Path(p).suffix for p in summary["products"]["color"])
    assert pictures == [".png", ".tiff"]
    from matplotlib.image import imread

    png = imread(next(p for p in summary["products"]["color"] if p.endswith(".png")))
    assert png.shape[:2] == first.data.shape and png.shape[2] >= 3
    provenance = read_sidecar(out / "color-M31.asdf")
    assert provenance.steps[-1].function == "astrophot.make_color_composite"
    reached = {a.reference.sha256 for a in provenance.ancestors()}
    assert set(raws.values()) <= reached
    html = (out / "report" / "night.html").read_text()
    for name in (*stacks, Path(line_path).name, "color-M31.png"):
        assert name in html


def test_print_config_and_precedence(tmp_path):
    proc = subprocess.run(cli("run", "--print-config"), capture_output=True, text=True, env=env(), timeout=60)
    assert proc.returncode == 0
    path = tmp_path / "c.yaml"
    path.write_text(proc.stdout.replace("center: mean ", "center: median"))
    assert load_config(path)["stack"]["center"] == "median"
    assert load_config(path, overrides=["stack.rejection=sigma"])["stack"]["rejection"] == "sigma"
    assert load_config(path, overrides=["stack.center=mean"])["stack"]["center"] == "mean"
    assert load_config()["stack"]["center"] == "mean"
    bad = tmp_path / "bad.yaml"
    bad.write_text("stack:\n  enabled: true\n  center: average\n")
    with pytest.raises(
        ConfigError, match=r"bad.yaml, line 3: stack.center = 'average': allowed values are mean, median"
    ):
        load_config(bad)
    bad.write_text("stack:\n  colour: 1\n")
    with pytest.raises(ConfigError, match=r"line 2: unknown key stack.colour; allowed keys are enabled"):
        load_config(bad)
    with pytest.raises(ConfigError, match="expected stage.option=value"):
        load_config(overrides=["nodot"])


def test_lock_refuses_a_second_run(night, tmp_path):
    out = tmp_path / "out"
    with OutputLock(out):
        with pytest.raises(OutputLockedError, match="another astrophot run"):
            process_night(night.download, output=out, library=night.library, overrides=FAST)


def test_a_night_inside_the_output_folder_is_found(night, tmp_path):
    """The products beside the night (output = the night's parent folder): its lights are found,
    the runner's own product folders are not searched (the whole output was left out: no lights)."""
    elsewhere = plan_night(
        copy_download(night, tmp_path / "a"), output=tmp_path / "out", library=night.library
    )
    download = copy_download(night, tmp_path / "b")
    (download.parent / "calibrated").mkdir()  # a product folder of an earlier run: not searched
    stray = download.parent / "calibrated" / Path(elsewhere.light_tasks[0]["inputs"]["raw"]).name
    shutil.copy(elsewhere.light_tasks[0]["inputs"]["raw"], stray)
    inside = plan_night(download, output=download.parent, library=night.library)
    lights = sorted(Path(t["inputs"]["raw"]).name for t in elsewhere.light_tasks)
    assert lights and sorted(Path(t["inputs"]["raw"]).name for t in inside.light_tasks) == lights


def _make_faults(night, download):
    """A corrupt light, a light without stars (unsolvable), a light of another binning (no calibration)."""
    lights = sorted(download.rglob("raw-*.fit"))
    if not lights:  # not unzipped yet
        from astrophot.instruments.itelescope import prepare_download

        prepare_download(download)
        lights = sorted(download.rglob("raw-*.fit"))
    extra = download / "extra"
    extra.mkdir()
    source = lights[1]
    corrupt = extra / source.name.replace("-001.fit", "-007.fit")
    data = source.read_bytes()
    corrupt.write_bytes(data[: len(data) // 2])
    with fits.open(source) as hdul:
        header = hdul[0].header.copy()
        pixels = hdul[0].data.astype(float)
    rng = np.random.default_rng(1)
    blank = np.median(pixels) + rng.normal(0, 10, pixels.shape)
    unsolvable = extra / source.name.replace("-001.fit", "-008.fit")
    fits.PrimaryHDU(blank.astype(np.uint16), header=header).writeto(unsolvable)
    header["XBINNING"] = header["YBINNING"] = 1
    other = extra / source.name.replace("BIN2", "BIN1").replace("-001.fit", "-009.fit")
    fits.PrimaryHDU(pixels.astype(np.uint16), header=header).writeto(other)
    return corrupt, unsolvable, other


def test_faults_reported_everything_else_produced(night, tmp_path):
    download = copy_download(night, tmp_path)
    corrupt, unsolvable, other = _make_faults(night, download)
    result = process_night(download, output=tmp_path / "out", library=night.library, overrides=FAST)
    assert result.stages["stack"] == {
        "status": "skipped",
        "reason": "disabled in the configuration",
        "products": [],
    }
    by_name = {Path(f["file"]).name: f for f in result.frames}
    assert by_name[corrupt.name]["status"] == "failed"
    assert by_name[corrupt.name]["reason"]
    assert by_name[unsolvable.name]["status"] in ("unsolved", "failed")
    assert by_name[unsolvable.name]["reason"]
    assert by_name[other.name]["status"] == "uncalibrated"
    assert "binning" in by_name[other.name]["reason"]
    good = [
        f for f in result.frames if Path(f["file"]).name not in (corrupt.name, unsolvable.name, other.name)
    ]
    assert len(good) == 3 and all(f["status"] == "done" and "solved" in f["products"] for f in good)
    assert not result.ok
    summary = result.summary()
    assert corrupt.name in summary and other.name in summary
    html = result.report.read_text()
    assert other.name in html and "no usable calibration" in html


def _sidecar_times(out):
    return {p.name: p.stat().st_mtime_ns for p in (out / "solved").glob("*.asdf")} | {
        p.name: p.stat().st_mtime_ns for p in (out / "calibrated").glob("*.asdf")
    }


def _no_partials(out):
    leftovers = [p for p in out.rglob("*") if p.name.endswith((".tmp", ".aptmp"))]
    assert not leftovers, leftovers
    for path in out.rglob("*.fits"):
        fits.getdata(path)  # readable: no half-written FITS
        assert path.with_suffix(".asdf").exists()


def _checksums(frames, kinds=("calibrated", "solved")):
    sums = {}
    for frame in frames:
        for kind in kinds:
            sums[(Path(frame["file"]).name, kind)] = data_checksum(read_frame(frame["products"][kind]).data)
    return sums


def _product_checksums(products):
    import hashlib

    sums = {
        Path(p).name: data_checksum(read_frame(p).data) for k in ("stack", "continuum") for p in products[k]
    }
    for path in products["color"]:
        if path.endswith(".png"):
            sums[Path(path).name] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    assert len(sums) == 5  # 3 stacks, the line image, the PNG
    return sums


def test_resume_after_kill_9_and_stack_option(night, cli_run, tmp_path):
    download = copy_download(night, tmp_path)
    out = tmp_path / "out"
    args = cli(
        "run",
        str(download),
        "-o",
        str(out),
        "--library",
        str(night.library),
        *sum((["--set", s] for s in RUN), []),
    )
    # kill moments spread over the time an uninterrupted run of this night took (on this machine, now)
    seconds = cli_run[2]
    rng = random.Random(15)
    for _ in range(3):
        proc = subprocess.Popen(args, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.1, 0.5) * seconds)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    before = _sidecar_times(out)
    proc = subprocess.run([*args, "--quiet"], capture_output=True, text=True, env=env(), timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "frames:" not in proc.stderr  # quiet: no progress lines
    _no_partials(out)
    after = _sidecar_times(out)
    # whatever was finished before the kills was not recomputed
    assert all(after[name] == t for name, t in before.items() if name in after)
    assert len(after) == 6
    # the interrupted night made the same products as the uninterrupted one
    frames = json.loads((out / "night.json").read_text())["frames"]
    local = json.loads((cli_run[1] / "night.json").read_text())["frames"]
    assert _checksums(frames) == _checksums(local)
    # a rerun redoes nothing, neither frames nor combined products
    combined = ("stack", "continuum", "color")
    again = [*RUN, "report.enabled=false"]  # the report is checked elsewhere
    result = process_night(download, output=out, library=night.library, overrides=again, progress=False)
    assert all(f["made"] == [] and set(f["skipped"]) == {"calibrated", "solved"} for f in result.frames)
    assert all(result.stages[s]["status"] == "done" and result.stages[s]["made"] == [] for s in combined)
    stacks = {Path(p).name: data_checksum(read_frame(p).data) for p in result.products["stack"]}
    # a changed stack option redoes the stacks only: no frame; the line and colour products only
    # if the stacks' pixels changed (they are made from the stacks' checksums)
    result = process_night(
        download, output=out, library=night.library, overrides=[*again, "stack.center=median"], progress=False
    )
    assert all(f["made"] == [] and set(f["skipped"]) == {"calibrated", "solved"} for f in result.frames)
    assert _sidecar_times(out) == after
    assert sorted(result.stages["stack"]["made"]) == ["stack-M31-Ha", "stack-M31-Red", "stack-M31-V"]
    changed = stacks != {Path(p).name: data_checksum(read_frame(p).data) for p in result.products["stack"]}
    assert result.stages["continuum"]["made"] == (["line-M31-Ha"] if changed else [])
    assert result.stages["color"]["made"] == (["color-M31"] if changed else [])
    assert read_frame(result.products["stack"][0]).provenance.steps[-1].parameters["center"] == "median"


def _daemonic():
    return multiprocessing.current_process().daemon


def test_distributed_matches_local(night, cli_run, tmp_path):
    # real `dask worker` processes with their nanny (daemonic workers: the engine may not fork there)
    pytest.importorskip("distributed")
    dask = shutil.which("dask")
    if dask is None:
        pytest.skip("the dask command is not installed")
    scheduler_file = tmp_path / "scheduler.json"
    procs = [
        subprocess.Popen(
            [
                dask,
                "scheduler",
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--no-dashboard",
                "--scheduler-file",
                str(scheduler_file),
            ],
            env=env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        for _ in range(1200):  # a loaded machine may take a while to start Python
            if scheduler_file.exists():
                break
            time.sleep(0.1)
        # two worker processes, each under its nanny (one command: one interpreter fewer to start)
        procs.append(
            subprocess.Popen(
                [
                    dask,
                    "worker",
                    "--scheduler-file",
                    str(scheduler_file),
                    "--nworkers",
                    "2",
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                    "--host",
                    "127.0.0.1",
                ],
                env=env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        from dask.distributed import Client

        with Client(scheduler_file=str(scheduler_file), timeout=120) as client:
            client.wait_for_workers(2, timeout=180)
            assert len(set(client.run(os.getpid).values())) == 2  # two worker processes
            assert all(client.run(_daemonic).values())  # under nannies: daemonic
            remote = process_night(
                copy_download(night, tmp_path / "a"),
                output=tmp_path / "dist",
                library=night.library,
                client=client,
                overrides=RUN,
            )
    finally:
        for proc in reversed(procs):
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    assert len(remote.frames) == 3 and all(f["status"] == "done" for f in remote.frames)
    local = json.loads((cli_run[1] / "night.json").read_text())
    assert _checksums(remote.frames) == _checksums(local["frames"])
    # the stacks, the line image (their pixels) and the colour picture (its bytes) are the same too
    assert _product_checksums(remote.products) == _product_checksums(local["products"])


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def test_report_in_headless_chromium(cli_run, tmp_path):
    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium installed (Debian: apt-get install chromium; .ci/run installs it)")
    _, out, _ = cli_run
    report = out / "report" / "night.html"
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    dom = subprocess.run(
        [browser, *flags, "--dump-dom", report.as_uri()], capture_output=True, text=True, timeout=120
    ).stdout
    # the browser rendered the page: every section and every frame's thumbnail are in its DOM
    for heading in ("Stages", "Frames", "Through the night", "Masters used and why", "Configuration"):
        assert f"<h2>{heading}</h2>" in dom
    assert dom.count('class="thumb"') == 3
    # previews of the 3 stacks (each with its coverage, exposure and rejection maps), the line image, the colour
    assert dom.count('class="thumb preview"') >= 5
    for name in ("stack-M31-Ha.fits", "stack-M31-V.fits", "line-M31-Ha.fits", "color-M31.png"):
        assert name in dom
    shot = tmp_path / "report.png"
    subprocess.run(
        [browser, *flags, "--window-size=1300,2400", f"--screenshot={shot}", report.as_uri()],
        capture_output=True,
        timeout=120,
    )
    from matplotlib.image import imread

    image = imread(shot)
    assert image.shape[:2] == (2400, 1300)
    assert image[..., :3].std() > 0.05  # not a blank page
