# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The command line as a user meets it, in real subprocesses: warnings on stderr naming the
file, many frames per call, the batch policy (every frame processed, each failure reported,
non-zero exit at the end), created output folders, inputs never taken as outputs.
"""

import hashlib
import os
import re
import subprocess
import sys

import pytest

from astrophot import CalibratedFrame, read_frame


@pytest.fixture(scope="module")
def night(tmp_path_factory):
    from astrophot.datasets import simulate_night

    root = tmp_path_factory.mktemp("night")
    return simulate_night(root, shape=(64, 96), n_lights=2, n_bias=3, n_darks=3, n_flats=3, seed=5)


def astrophot(*args, cwd=None, path_first=None):
    """Run ``astrophot ARGS...`` in a subprocess with this tree (after ``path_first``) on the path."""
    env = dict(os.environ)
    if path_first is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(path_first), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "astrophot.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def _digest(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def _masters(night, light):
    flat = night.masters["flats"]["Ha"] if "-Ha-" in light.name else night.masters["flats"]["Red"]
    return ["--bias", night.masters["bias"], "--dark", night.masters["dark"], "--flat", flat]


def test_red_light_with_ha_flat_warns_on_stderr_naming_the_file(night, tmp_path):
    red = next(p for p in night.lights if "-Red-" in p.name)
    args = [
        "--bias",
        night.masters["bias"],
        "--dark",
        night.masters["dark"],
        "--flat",
        night.masters["flats"]["Ha"],
    ]
    proc = astrophot("calibrate", red, *args, "-o", tmp_path / "out", "--cosmic-rays")
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "WARNING" in line]
    flat_lines = [line for line in lines if "filter" in line.lower() and "Ha" in line]
    assert len(flat_lines) == 1, proc.stderr  # once
    assert red.name in flat_lines[0]
    # the cosmic-ray line of a frame calibrated in memory names the file it came from
    cr_lines = [line for line in proc.stderr.splitlines() if "cosmic-ray pixels" in line]
    assert len(cr_lines) == 1 and red.name in cr_lines[0], proc.stderr
    assert "in-memory" not in proc.stderr


def test_many_frames_one_corrupt_processes_the_others_and_exits_1(night, tmp_path):
    corrupt = tmp_path / "raw-corrupt.fit"
    corrupt.write_bytes(b"SIMPLE  =                    T" + b"\0" * 100)
    lights = sorted(p for p in night.lights if "-Red-" in p.name)
    before = {p: _digest(p) for p in lights}
    out = tmp_path / "made" / "here"  # does not exist: created
    proc = astrophot("calibrate", lights[0], corrupt, *lights[1:], *_masters(night, lights[0]), "-o", out)
    assert proc.returncode == 1
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert any("raw-corrupt.fit" in line for line in errors), proc.stderr
    assert "1 of" in proc.stderr and "failed" in proc.stderr
    written = sorted(out.glob("cal-*.fits"))
    assert len(written) == len(lights)
    assert all(isinstance(read_frame(p), CalibratedFrame) for p in written)
    assert {p: _digest(p) for p in lights} == before

    # a rerun keeps the complete, up-to-date products and still reports the bad frame
    stamps = {p: p.stat().st_mtime_ns for p in written}
    again = astrophot("calibrate", *lights, corrupt, *_masters(night, lights[0]), "-o", out)
    assert again.returncode == 1
    assert "up to date" in again.stderr
    assert {p: p.stat().st_mtime_ns for p in written} == stamps


def test_output_that_is_an_input_is_refused_even_with_overwrite(night, tmp_path):
    light = night.lights[0]
    before = _digest(light)
    proc = astrophot("calibrate", light, *_masters(night, light), "-o", light, "--overwrite")
    assert proc.returncode == 1
    assert "is an input" in proc.stderr
    assert _digest(light) == before


def test_output_that_is_a_frame_of_another_kind_is_refused(night, tmp_path):
    bias = tmp_path / "bias-copy.fits"
    bias.write_bytes(open(night.masters["bias"], "rb").read())
    light = night.lights[0]
    proc = astrophot("calibrate", light, *_masters(night, light), "-o", bias, "--overwrite")
    assert proc.returncode == 1
    assert "refusing to replace it" in proc.stderr
    assert _digest(bias) == _digest(night.masters["bias"])


def test_help_lists_subcommands_in_pipeline_order_without_importing_them():
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "astrophot.cli.main", "--help"],
        capture_output=True,
        text=True,
        env=dict(os.environ),
    )
    assert proc.returncode == 0
    order = [
        line.split()[0] for line in proc.stdout.splitlines() if line.startswith("    ") and line[4:5].strip()
    ]
    names = [n for n in order if n in ("prepare", "combine", "calibrate", "find-stars", "solve", "quality")]
    assert names == ["prepare", "combine", "calibrate", "find-stars", "solve", "quality"]
    imported = proc.stderr
    for heavy in ("astropy.nddata", "asdf_astropy", "astrophot.cli.reduction", "astrophot.io"):
        assert f" {heavy}\n" not in imported and f"| {heavy}\n" not in imported, heavy


def test_every_subcommand_has_a_description_and_is_in_the_table():
    from astrophot.cli import main as cli

    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    table = {row.name for row in cli.SUBCOMMANDS}
    for name, subparser in sub.choices.items():
        assert name in table
        assert subparser.description, name


@pytest.fixture(scope="module")
def calibrated(night, tmp_path_factory):
    from astrophot.cli.main import main

    out = tmp_path_factory.mktemp("cal")
    lights = sorted(p for p in night.lights if "-Red-" in p.name)
    assert main(["calibrate", *map(str, lights), *map(str, _masters(night, lights[0])), "-o", str(out)]) == 0
    return sorted(out.glob("cal-*.fits"))


def test_find_stars_on_many_frames_never_writes_over_a_frame(calibrated, tmp_path):
    frames = [tmp_path / p.name for p in calibrated]
    for src, dst in zip(calibrated, frames):
        dst.write_bytes(src.read_bytes())
        dst.with_suffix(".asdf").write_bytes(src.with_suffix(".asdf").read_bytes())
    before = [_digest(p) for p in frames]
    # the README's glob with exactly two frames: both are inputs, even with --overwrite
    proc = astrophot("find-stars", *frames, "--overwrite")
    assert proc.returncode == 0, proc.stderr
    assert [_digest(p) for p in frames] == before
    lists = sorted(tmp_path.glob("*.stars.ecsv"))
    assert len(lists) == len(frames)
    assert all(p.name in proc.stderr for p in frames)  # the log lines name the files
    # frames not cleaned of cosmic rays: a warning each, naming it (their stars may be cosmic rays)
    warned = [line for line in proc.stderr.splitlines() if "cosmic rays were not rejected" in line]
    assert len(warned) == len(frames) and all(any(p.name in w for w in warned) for p in frames)
    # into a new folder, with a region file per frame
    proc = astrophot("find-stars", *frames, "-o", tmp_path / "stars", "--ds9")
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "stars").glob("*.stars.ecsv"))) == len(frames)
    assert len(list((tmp_path / "stars").glob("*.reg"))) == len(frames)


def test_cosmic_rays_and_fix_badpix_take_many_frames(calibrated, tmp_path):
    proc = astrophot("cosmic-rays", *calibrated, "-o", tmp_path / "clean")
    assert proc.returncode == 0, proc.stderr
    cleaned = sorted((tmp_path / "clean").glob("*.fits"))
    assert len(cleaned) == len(calibrated)
    proc = astrophot("fix-badpix", *cleaned, "-o", tmp_path / "fixed")
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "fixed").glob("*.fits"))) == len(calibrated)
    assert all(p.name in proc.stderr for p in cleaned)
    proc = astrophot("find-stars", *(tmp_path / "fixed").glob("*.fits"))  # cleaned: no warning
    assert proc.returncode == 0 and "cosmic rays were not rejected" not in proc.stderr, proc.stderr
    # a rerun keeps the up-to-date products; other options are refused without --overwrite
    stamps = {p: p.stat().st_mtime_ns for p in cleaned}
    proc = astrophot("cosmic-rays", *calibrated, "-o", tmp_path / "clean")
    assert proc.returncode == 0 and proc.stderr.count("up to date, kept") == len(calibrated), proc.stderr
    proc = astrophot("cosmic-rays", *calibrated, "-o", tmp_path / "clean", "--sigclip", "6")
    assert proc.returncode == 1 and "not up to date (parameter 'sigclip' was 4.5, now 6.0)" in proc.stderr
    assert {p: p.stat().st_mtime_ns for p in cleaned} == stamps


def test_find_badcols_takes_many_frames_and_never_writes_over_one(calibrated, tmp_path):
    from astrophot.calibration import BadPixelRegions

    before = [_digest(p) for p in calibrated]
    proc = astrophot("find-badcols", *calibrated, "-o", tmp_path / "cols")  # a new folder
    assert proc.returncode == 0, proc.stderr
    files = sorted((tmp_path / "cols").glob("badcols-*.yml"))
    assert len(files) == len(calibrated), proc.stdout + proc.stderr
    assert [_digest(p) for p in calibrated] == before
    assert all(p.name in proc.stdout for p in calibrated)
    assert "INFO" not in proc.stderr  # the result is said once, on stdout
    for path in files:
        BadPixelRegions.from_yaml(path)
    # exactly two frames and no -o: both are inputs, each YAML beside its frame
    pair = [tmp_path / p.name for p in calibrated[:2]]
    for src, dst in zip(calibrated, pair):
        dst.write_bytes(src.read_bytes())
        dst.with_suffix(".asdf").write_bytes(src.with_suffix(".asdf").read_bytes())
    proc = astrophot("find-badcols", *pair)
    assert proc.returncode == 0, proc.stderr
    assert len(list(tmp_path.glob("badcols-*.yml"))) == 2
    again = astrophot("find-badcols", *pair)  # an existing YAML is kept without --overwrite
    assert again.returncode == 1 and again.stderr.count("already exists") == 2, again.stderr
    assert astrophot("find-badcols", *pair, "--overwrite").returncode == 0


def test_demo_into_a_used_folder_is_refused_at_once(tmp_path):
    used = tmp_path / "demo-output"
    (used / "quality").mkdir(parents=True)
    (used / "quality" / "quality.csv").write_text("file\n")
    before = sorted(p.relative_to(used) for p in used.rglob("*"))
    proc = astrophot("demo", used)
    assert proc.returncode == 1
    assert "not empty" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.relative_to(used) for p in used.rglob("*")) == before  # nothing written


def test_calibrate_compress_gives_the_same_pixels_in_less_space(night, calibrated, tmp_path):
    import numpy as np

    lights = sorted(p for p in night.lights if "-Red-" in p.name)
    out = tmp_path / "packed"
    proc = astrophot("calibrate", *lights, *_masters(night, lights[0]), "-o", out, "--compress")
    assert proc.returncode == 0, proc.stderr
    for plain in calibrated:
        packed = out / plain.name
        a, b = read_frame(plain), read_frame(packed)
        np.testing.assert_array_equal(a.data, b.data)
        np.testing.assert_array_equal(a.uncertainty.array, b.uncertainty.array)
        np.testing.assert_array_equal(a.flags, b.flags)
        assert packed.stat().st_size < plain.stat().st_size
    proc = astrophot("info", out / calibrated[0].name)
    assert proc.returncode == 0, proc.stderr
    ny, nx = read_frame(calibrated[0]).data.shape
    assert f"shape       {nx} x {ny} (float32, electron), tile-compressed GZIP_2" in proc.stdout, proc.stdout


def test_results_are_said_once_in_the_cameras_units(night, tmp_path):
    import zipfile

    proc = astrophot("find-badpix", night.masters["dark"], tmp_path / "bpm.fits")
    assert proc.returncode == 0, proc.stderr
    assert (proc.stdout + proc.stderr).count(" hot, ") == 1, proc.stdout + proc.stderr
    proc = astrophot("read-noise", night.biases[0], night.biases[1])
    assert proc.returncode == 0, proc.stderr
    assert re.fullmatch(r"read noise [0-9.]+ ADU \(gain unknown; \d+ pixels, \d+ rejected\)\n", proc.stdout)
    folder = tmp_path / "My Night"
    folder.mkdir()
    with zipfile.ZipFile(folder / "a night.zip", "w") as archive:
        archive.write(night.lights[0], arcname="raw one.fit")
    proc = astrophot("prepare", tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "raw_one.fit" in proc.stdout and "raw_one.fit" not in proc.stderr  # the report says it, once
    assert (tmp_path / "My_Night" / "raw_one.fit").exists()
