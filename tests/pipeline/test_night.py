# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The night runner on a simulated, zipped iTelescope night with a calibration library."""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from astrophot.datasets import simulate_itelescope_night
from astrophot.frames import data_checksum
from astrophot.io import read_frame
from astrophot.pipeline import ConfigError, OutputLockedError, load_config, process_night
from astrophot.pipeline._state import OutputLock

SHAPE = (160, 240)
FAST = ["cosmic_rays.enabled=false", "metadata.enabled=false"]


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    """Three filters (Ha, Red, V), one light each, zipped; a calibration library."""
    return simulate_itelescope_night(
        tmp_path_factory.mktemp("sim") / "night", n_lights=1, shape=SHAPE, seed=5
    )


def _copy_download(night, tmp_path):
    download = tmp_path / "download"
    shutil.copytree(night.download, download)
    return download


def _env():
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])
    env["PYTHONPATH"] = os.pathsep.join([root, env.get("PYTHONPATH", "")])
    return env


def _cli(*args):
    code = "import sys; from astrophot.cli.main import main; sys.exit(main(sys.argv[1:]))"
    return [sys.executable, "-c", code, *args]


RUN = ["cosmic_rays.enabled=true", "metadata.enabled=false"]


@pytest.fixture(scope="module")
def cli_run(night, tmp_path_factory):
    """One ``astrophot run`` of the zipped night (a real process)."""
    tmp_path = tmp_path_factory.mktemp("run")
    download = _copy_download(night, tmp_path)
    out = tmp_path / "out"
    sets = sum((["--set", s] for s in RUN), [])
    proc = subprocess.run(
        _cli("run", str(download), "-o", str(out), "--library", str(night.library), *sets),
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )
    return proc, out


def test_run_cli_products_report_and_provenance(night, cli_run):
    proc, out = cli_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "lights: 3 done" in proc.stdout
    summary = json.loads((out / "night.json").read_text())
    assert len(summary["frames"]) == 3
    raws = {Path(p).name: data_checksum(read_frame(p).data) for p in night.night.lights}
    for frame in summary["frames"]:
        assert frame["status"] == "done", frame
        solved = read_frame(frame["products"]["solved"])
        assert solved.wcs is not None and solved.wcs.has_celestial
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
    # stages that are not built yet are reported as such, not faked
    # ('skipped': the stage exists but what it combines, the stacks, does not)
    for stage in ("stack", "continuum", "color"):
        assert summary["stages"][stage]["status"] in ("done", "not available", "skipped")
        if summary["stages"][stage]["status"] != "done":
            assert not summary["stages"][stage]["products"]
    html = (out / "report" / "night.html").read_text()
    assert html.count("data:image/png;base64,") >= 4  # 3 thumbnails + the plots
    assert "Masters used and why" in html and "stack.method" not in html  # config is YAML, not dotted
    assert (out / "astrophot-run.log").stat().st_size > 0
    assert (out / "config-used.yaml").exists()


def test_print_config_and_precedence(tmp_path):
    proc = subprocess.run(
        _cli("run", "--print-config"), capture_output=True, text=True, env=_env(), timeout=60
    )
    assert proc.returncode == 0
    path = tmp_path / "c.yaml"
    path.write_text(proc.stdout.replace("method: mean ", "method: median"))
    assert load_config(path)["stack"]["method"] == "median"
    assert load_config(path, overrides=["stack.method=sum"])["stack"]["method"] == "sum"
    assert load_config()["stack"]["method"] == "mean"
    bad = tmp_path / "bad.yaml"
    bad.write_text("stack:\n  enabled: true\n  method: average\n")
    with pytest.raises(
        ConfigError, match=r"bad.yaml, line 3: stack.method = 'average': allowed values are mean"
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
    download = _copy_download(night, tmp_path)
    corrupt, unsolvable, other = _make_faults(night, download)
    result = process_night(download, output=tmp_path / "out", library=night.library, overrides=FAST)
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
    leftovers = [p for p in out.rglob("*.tmp")]
    assert not leftovers, leftovers
    for path in out.rglob("*.fits"):
        fits.getdata(path)  # readable: no half-written FITS
        assert path.with_suffix(".asdf").exists()


def test_resume_after_kill_9_and_stack_option(night, tmp_path):
    download = _copy_download(night, tmp_path)
    out = tmp_path / "out"
    args = _cli(
        "run",
        str(download),
        "-o",
        str(out),
        "--library",
        str(night.library),
        *sum((["--set", s] for s in FAST), []),
    )
    rng = random.Random(15)
    for _ in range(3):
        proc = subprocess.Popen(args, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(2.0, 6.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    before = _sidecar_times(out)
    proc = subprocess.run(args, capture_output=True, text=True, env=_env(), timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _no_partials(out)
    after = _sidecar_times(out)
    # whatever was finished before the kills was not recomputed
    assert all(after[name] == t for name, t in before.items() if name in after)
    assert len(after) == 6
    # a rerun redoes nothing per frame; a changed stack option redoes only the stacks
    result = process_night(
        download, output=out, library=night.library, overrides=[*FAST, "stack.method=median"]
    )
    assert all(f["made"] == [] and set(f["skipped"]) == {"calibrated", "solved"} for f in result.frames)
    assert _sidecar_times(out) == after


def test_distributed_matches_local(night, cli_run, tmp_path):
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
            env=_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    try:
        for _ in range(200):
            if scheduler_file.exists():
                break
            time.sleep(0.1)
        for _ in range(2):
            procs.append(
                subprocess.Popen(
                    [
                        dask,
                        "worker",
                        "--scheduler-file",
                        str(scheduler_file),
                        "--nthreads",
                        "1",
                        "--no-nanny",
                        "--no-dashboard",
                        "--host",
                        "127.0.0.1",
                    ],
                    env=_env(),
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        from dask.distributed import Client

        with Client(scheduler_file=str(scheduler_file), timeout=60) as client:
            client.wait_for_workers(2, timeout=60)
            remote = process_night(
                _copy_download(night, tmp_path / "a"),
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

    def checksums(frames):
        sums = {}
        for frame in frames:
            for kind in ("calibrated", "solved"):
                sums[(Path(frame["file"]).name, kind)] = data_checksum(
                    read_frame(frame["products"][kind]).data
                )
        return sums

    assert len(remote.frames) == 3 and all(f["status"] == "done" for f in remote.frames)
    local = json.loads((cli_run[1] / "night.json").read_text())["frames"]
    assert checksums(remote.frames) == checksums(local)


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
    _, out = cli_run
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
    assert "not available" in dom or "stack-" in dom
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
