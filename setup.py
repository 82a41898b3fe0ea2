# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Build of astrophot's compiled extensions; the metadata is in setup.cfg.

Every ``astrophot/**/*.pyx`` is one extension module named after its path, so a new compiled
module needs no change here.
"""

from pathlib import Path

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

HERE = Path(__file__).parent


def _extensions():
    extensions = []
    for source in sorted((HERE / "astrophot").rglob("*.pyx")):
        relative = source.relative_to(HERE)
        extensions.append(
            Extension(
                ".".join(relative.with_suffix("").parts),
                [relative.as_posix()],
                include_dirs=[numpy.get_include()],
                define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
                extra_compile_args=["-O3"],
            )
        )
    return extensions


setup(ext_modules=cythonize(_extensions(), compiler_directives={"language_level": 3}))
