# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The gallery examples as a reader sees them: no stray ``<matplotlib.legend.Legend ...>`` or
``Text(...)`` line printed under a code block (sphinx-gallery prints the repr of a block's
last expression), and the quality example starts from raw files as a user has them.
"""

import ast
import re
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").rglob("plot_*.py"))
#: Calls whose value is None or meant to be shown.
_SHOWN = {"print", "show", "display"}
_BLOCK = re.compile(r"^#{20,}\s*$", re.MULTILINE)


def _blocks(source):
    """The code blocks sphinx-gallery makes (split at lines of ``#####...``), as parsed modules."""
    for text in _BLOCK.split(source):
        yield ast.parse(text)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_no_block_ends_with_a_value_that_gallery_prints(path):
    for block in _blocks(path.read_text()):
        body = [
            node
            for node in block.body
            if not isinstance(node, ast.Expr) or not isinstance(node.value, ast.Constant)
        ]
        if not body or not isinstance(body[-1], ast.Expr) or not isinstance(body[-1].value, ast.Call):
            continue
        func = body[-1].value.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        assert name in _SHOWN, (
            f"{path.name}: a block ends with {ast.unparse(body[-1])!r}; its value is printed"
        )


def test_grading_example_calibrates_raw_files():
    source = (Path(__file__).resolve().parents[1] / "examples" / "analysis" / "plot_quality.py").read_text()
    assert "calibrate_frame(read_frame(" in source and "make_master_bias(" in source
    assert "truth.noiseless" not in source and "expected_dark" not in source  # nothing from the truth
