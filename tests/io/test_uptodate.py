# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""is_up_to_date: the reader-side check a batch uses to skip finished outputs (issue 11, finding 13)."""

import numpy as np
import pytest
from astropy.io import fits

from astrophot import calibrate_frame, write_frame
from astrophot.calibration import make_master_bias
from astrophot.datasets import make_bias_stack, make_raw_frame
from astrophot.io import is_up_to_date, up_to_date_reason

SHAPE = (20, 30)


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("uptodate")
    biases, _ = make_bias_stack(3, shape=SHAPE, seed=2)
    bias = make_master_bias(biases)
    raw, _ = make_raw_frame(shape=SHAPE, seed=2)
    cal = calibrate_frame(raw, bias=bias, gain=1.5, read_noise=5.0)
    path = write_frame(cal, tmp / "cal.fits")
    return raw, bias, cal, path


def test_complete_product_with_same_inputs_is_up_to_date(made):
    raw, bias, _, path = made
    assert is_up_to_date(path, inputs=[raw, bias], function="calibrate_frame", parameters={"gain": 1.5})
    assert (
        up_to_date_reason(path, inputs=[bias.checksum(), raw], function="astrophot.calibrate_frame") is None
    )


def test_other_inputs_function_parameters_are_not(made):
    raw, bias, _, path = made
    other, _ = make_raw_frame(shape=SHAPE, seed=3)
    assert not is_up_to_date(path, inputs=[other, bias])
    assert "not made from" in up_to_date_reason(path, inputs=[raw, other])
    assert is_up_to_date(path, inputs=[raw])  # masters a library chose need not be given
    assert "made by astrophot.calibrate_frame" in up_to_date_reason(path, function="stack_frames")
    assert "parameter 'gain'" in up_to_date_reason(path, parameters={"gain": 2.0})


def test_version_change_is_not(made, monkeypatch):
    import astrophot

    _, _, _, path = made
    monkeypatch.setattr(astrophot, "__version__", "0.0.0-other")
    assert "this is 0.0.0-other" in up_to_date_reason(path)
    assert is_up_to_date(path, version=False)


def test_missing_partial_or_edited_is_not(made, tmp_path):
    _, _, cal, _ = made
    assert up_to_date_reason(tmp_path / "none.fits") == "missing"
    path = write_frame(cal, tmp_path / "a.fits")
    (tmp_path / "a.asdf").unlink()  # half a pair
    assert not is_up_to_date(path)
    path = write_frame(cal, tmp_path / "b.fits")
    with fits.open(path, mode="update") as hdul:
        hdul[0].data[0, 0] += np.float32(100.0)
    assert "pixels changed" in up_to_date_reason(path)
    foreign = tmp_path / "raw.fits"
    fits.writeto(foreign, np.zeros((4, 4), dtype=np.uint16))
    assert "not an astrophot product" in up_to_date_reason(foreign)


def test_inputs_given_as_paths_positionally(made, tmp_path):
    from astrophot import write_frame as write

    raw, bias, _, path = made
    raw_path = write(raw.copy(), tmp_path / "raw.fits")
    bias_path = write(bias, tmp_path / "bias.fits")
    assert is_up_to_date(path, [raw_path, bias_path])
    assert "unreadable" in up_to_date_reason(path, [tmp_path / "gone.fits"])
