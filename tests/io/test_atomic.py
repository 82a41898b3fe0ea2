# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The one file writer (`astrophot.io._atomic`): names of temporaries."""

import os


def test_a_long_target_name_gives_a_temporary_the_file_system_takes(tmp_path):
    from astrophot.io._atomic import atomic_path, owned_temporary, parse_temporary

    target = tmp_path / ("x" * 240 + ".fits")  # 245 bytes: room for the name, not for the suffixes
    tmp = owned_temporary(target)
    assert len(tmp.name.encode()) <= 255
    name, _, _, pid = parse_temporary(tmp)
    assert target.name.startswith(name) and pid == os.getpid()
    with atomic_path(target) as tmp:
        tmp.write_bytes(b"whole")  # would fail with 'File name too long' at 256 bytes and more
    assert target.read_bytes() == b"whole"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]
