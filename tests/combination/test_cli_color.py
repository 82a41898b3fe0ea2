# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""``astrophot continuum`` and ``astrophot color`` end to end."""

import json

import numpy as np
import pytest

from astrophot import read_frame, write_frame
from astrophot.cli import main as cli
from astrophot.datasets import make_continuum_pair, make_rgb_field


def test_continuum_command(tmp_path, capsys):
    narrow, broad, truth = make_continuum_pair(seed=2)
    n_path = write_frame(narrow, tmp_path / "ha.fits")
    b_path = write_frame(broad, tmp_path / "r.fits")
    out = tmp_path / "line.fits"
    assert (
        cli.main(["continuum", str(n_path), str(b_path), "-o", str(out), "--plot", str(tmp_path / "k.png")])
        == 0
    )
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert abs(summary["k"] / truth.k - 1) < 0.01
    line = read_frame(out)
    assert line.frame_type == "LineFrame"
    assert (tmp_path / "k.png").stat().st_size > 1000
    assert cli.main(["continuum", str(n_path), str(b_path), "-o", str(out)]) == 1
    assert "exists" in capsys.readouterr().err
    assert cli.main(["continuum", str(n_path), str(b_path), "-o", str(n_path)]) == 1
    assert "input" in capsys.readouterr().err


def test_color_command_and_alias(tmp_path, capsys):
    import tifffile

    frames, _ = make_rgb_field(seed=1, shape=(120, 150), n_stars=25)
    paths = [str(write_frame(f, tmp_path / f"{f.header['FILTER']}.fits")) for f in frames]
    out = tmp_path / "picture.tif"
    assert cli.main(["color", *paths[::-1], "-o", str(out), "--palette", "RGB", "--stretch", "stiff"]) == 0
    image = tifffile.imread(out)
    assert image.shape == (120, 150, 3) and image.dtype == np.uint16
    with pytest.raises(SystemExit) as info:
        cli.ap_color(
            [*paths, "-o", str(tmp_path / "p.png"), "--bits", "8", "--option", "Q=10", "--stretch", "lupton"]
        )
    assert info.value.code == 0
    assert (tmp_path / "p.png").exists()
    assert (
        cli.main(["color", paths[0], paths[1], str(tmp_path / "missing.fits"), "-o", str(tmp_path / "x.tif")])
        == 1
    )
    assert "missing.fits" in capsys.readouterr().err
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        code = cli.main(["color", *paths, "-o", str(locked / "x.tif")])
        import os

        if os.geteuid() != 0:  # root writes anywhere
            assert code == 1
            assert "x.tif" in capsys.readouterr().err
    finally:
        locked.chmod(0o700)
