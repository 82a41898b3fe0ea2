# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Sphinx configuration for the astrophot documentation."""

import os
import warnings

import astrophot

project = "astrophot"
author = "astrophot developers"
copyright = "2026, astrophot developers"
version = release = astrophot.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "sphinx_automodapi.automodapi",
    "sphinx_automodapi.smart_resolver",
    "sphinx_gallery.gen_gallery",
]

numpydoc_show_class_members = False
numpydoc_xref_param_type = False
automodapi_toctreedirnm = "api"
automodsumm_inherited_members = False
autosummary_generate = True
default_role = "obj"
nitpicky = False
suppress_warnings = ["ref.python", "ref.obj", "autosummary", "app.add_directive", "toc.not_included"]

intersphinx_mapping = {
    "python": ("https://docs.python.org/3/", None),
    "numpy": ("https://numpy.org/doc/stable/", None),
    "astropy": ("https://docs.astropy.org/en/stable/", None),
}
# no network in CI: do not fetch inventories
if os.environ.get("ASTROPHOT_DOCS_OFFLINE", "1") == "1":
    intersphinx_mapping = {}

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "remove_config_comments": True,
    "within_subsection_order": "FileNameSortKey",
    "matplotlib_animations": False,
}

html_theme = "pydata_sphinx_theme"
html_title = f"astrophot {release}"
html_static_path = ["_static"]
html_css_files = ["astrophot.css"]  # code and output wrap instead of being cut off
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "auto_examples/*.ipynb", "auto_examples/**/*.py"]

warnings.filterwarnings("ignore", message="Matplotlib is currently using agg")
