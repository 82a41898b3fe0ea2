# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The ASDF sidecar: plain asdf.open, schema validation, tested schema examples, ancestry."""

import io
import warnings
from pathlib import Path

import asdf
import numpy as np
import pytest
import yaml

from astrophot import CalibratedFrame, MasterBias, RawFrame, read_frame, write_frame
from astrophot.exceptions import ProvenanceError
from astrophot.provenance import FrameReference, ProcessingStep, Provenance, start_step

RESOURCES = Path(__file__).resolve().parents[2] / "astrophot" / "resources"
SCHEMAS = sorted((RESOURCES / "schemas").glob("*.yaml"))


def _chain(tmp_path):
    raw_path = tmp_path / "raw.fits"
    raw = start_step("read_test").finish(RawFrame(np.full((4, 4), 1000, dtype=np.uint16)))
    write_frame(raw, raw_path)
    raw = read_frame(raw_path)
    bias = start_step("make_master_bias").finish(MasterBias(np.full((4, 4), 900.0, dtype=np.float32)))
    write_frame(bias, tmp_path / "bias.fits")
    bias = read_frame(tmp_path / "bias.fits")
    rec = start_step("calibrate_frame", parameters={"unit": "electron"}, inputs={"raw": raw, "bias": bias})
    cal = rec.finish(CalibratedFrame(raw.data - bias.data), primary=raw, outcome={"n_saturated": 0})
    write_frame(cal, tmp_path / "cal.fits")
    return raw, bias, cal


def test_sidecar_opens_with_plain_asdf_and_validates(tmp_path):
    _, _, cal = _chain(tmp_path)
    with asdf.open(tmp_path / "cal.asdf") as af:
        af.validate()
        prov = af.tree["provenance"]
        assert isinstance(prov, Provenance)
        assert prov == cal.provenance
        assert af.tree["fits_file"] == "cal.fits"
        assert af.tree["frame_type"] == "CalibratedFrame"
    text = (tmp_path / "cal.asdf").read_text(errors="replace")
    for tag in ("provenance-1.0.0", "processing_step-1.0.0", "frame_reference-1.0.0"):
        assert f"asdf://astrophot.org/astrophot/tags/{tag}" in text
    last = cal.provenance.last
    assert last.function == "astrophot.calibrate_frame"
    assert {ref.role for ref in last.inputs} == {"raw", "bias"}
    assert all(len(ref.sha256) == 64 for ref in last.inputs)
    assert last.output.sha256 == cal.checksum()


def test_ancestors_walk_through_sidecars(tmp_path):
    raw, bias, cal = _chain(tmp_path)
    back = read_frame(tmp_path / "cal.fits")
    ancestors = back.provenance.ancestors()
    by_role = {a.reference.role: a for a in ancestors}
    assert set(by_role) == {"raw", "bias"}
    assert by_role["bias"].provenance.last.function == "astrophot.make_master_bias"
    assert by_role["raw"].reference.sha256 == raw.checksum()
    assert by_role["bias"].reference.path == str(tmp_path / "bias.fits")


def test_sidecar_mismatch_is_an_error(tmp_path):
    _chain(tmp_path)
    (tmp_path / "bias.asdf").replace(tmp_path / "cal.asdf")
    with pytest.raises(ProvenanceError, match="belongs to another frame"):
        read_frame(tmp_path / "cal.fits")


@pytest.mark.parametrize("schema_path", SCHEMAS, ids=[p.name for p in SCHEMAS])
def test_schema_examples_validate(schema_path):
    schema = yaml.safe_load(schema_path.read_text())
    assert schema["examples"], f"{schema_path.name} has no examples"
    for description, example in schema["examples"]:
        buff = io.BytesIO()
        # the example, indented under one key of a minimal ASDF file
        lines = example.strip().splitlines()
        content = (
            "#ASDF 1.0.0\n#ASDF_STANDARD 1.5.0\n%YAML 1.1\n%TAG ! tag:stsci.edu:asdf/\n--- !core/asdf-1.1.0\nexample: "
            + lines[0]
            + "\n"
            + "\n".join("  " + line for line in lines[1:])
            + "\n...\n"
        )
        buff.write(content.encode())
        buff.seek(0)
        with asdf.open(buff) as af:
            af.validate()
            value = af.tree["example"]
            assert type(value).__name__ in {"FrameReference", "ProcessingStep", "Provenance"}, description


def test_manifest_lists_every_schema():
    manifest = yaml.safe_load((RESOURCES / "manifests" / "astrophot-1.0.0.yaml").read_text())
    listed = {tag["schema_uri"].rsplit("/", 1)[1] for tag in manifest["tags"]}
    assert listed == {p.stem for p in SCHEMAS}


def test_invalid_record_is_rejected_by_schema(tmp_path):
    bad = FrameReference(sha256="not-a-checksum", frame_type="RawFrame")
    step = ProcessingStep(function="astrophot.x", inputs=(bad,), start_time="2024", duration=0.1)
    with pytest.raises(asdf.ValidationError), warnings.catch_warnings():
        # asdf < 4 validates (with a deprecation warning) already when the file object is made
        warnings.simplefilter("ignore", asdf.exceptions.AsdfDeprecationWarning)
        asdf.AsdfFile({"provenance": Provenance.new((step,))}).write_to(tmp_path / "bad.asdf")


def test_secrets_never_reach_the_sidecar(tmp_path):
    rec = start_step("solve_astrometry", parameters={"api_key": "SUPERSECRET123", "web": {"password": "pw"}})
    frame = rec.finish(CalibratedFrame(np.ones((2, 2))))
    write_frame(frame, tmp_path / "s.fits")
    text = (tmp_path / "s.asdf").read_text(errors="replace")
    assert "SUPERSECRET123" not in text and "pw}" not in text
    assert "<redacted>" in text


_NO_OTHER_EXTENSIONS = """
import sys
import asdf_astropy.integration as integration

calls = []
real = integration.get_extensions

def counted():
    calls.append(1)
    return real()

integration.get_extensions = counted
import numpy as np
from astrophot import CalibratedFrame, read_frame, write_frame
frame = CalibratedFrame(np.arange(12.0).reshape(3, 4), unit="electron")
write_frame(frame, sys.argv[1])
back = read_frame(sys.argv[1])
assert np.array_equal(back.data, frame.data)
assert back.provenance.id == frame.provenance.id
print("loaded during sidecar I/O:", len(calls))
import asdf
names = {ext.package_name for ext in asdf.get_config().extensions}
print("loaded afterwards:", len(calls), "asdf-astropy" in names)
"""


def test_sidecars_load_only_the_extensions_they_need(tmp_path):
    # asdf-astropy's ~30 manifests took 2.2 of 2.9 s of a process's first sidecar
    # (12 s at load 20); a sidecar holds asdf core and astrophot tags only.
    import os
    import subprocess
    import sys

    pytest.importorskip("asdf_astropy")
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(Path(__file__).parents[2]), os.environ.get("PYTHONPATH", "")]),
    )
    done = subprocess.run(
        [sys.executable, "-c", _NO_OTHER_EXTENSIONS, str(tmp_path / "f.fits")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "loaded during sidecar I/O: 0" in done.stdout
    # the user's own asdf configuration still loads every installed extension
    assert "loaded afterwards: 1 True" in done.stdout


def test_sidecar_written_with_all_extensions_loaded_reads_back(tmp_path):
    assert asdf.get_config().extensions  # loaded in full, as a user's own asdf work does
    frame = CalibratedFrame(np.ones((3, 4)), unit="electron")
    write_frame(frame, tmp_path / "f.fits")
    assert read_frame(tmp_path / "f.fits").provenance.id == frame.provenance.id
