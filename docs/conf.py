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
# every cross-reference must resolve (a build with -n -W in .ci/run). Offline (no intersphinx
# inventories: CI reaches only the package registries) the other projects' names cannot be resolved,
# so they alone are ignored: astrophot's own references are all checked.
nitpicky = True
nitpick_ignore_regex = [
    (
        r"py:.*",
        r"(numpy|astropy|scipy|pathlib|types|enum|datetime|reproject|photutils|ccdproc|dask|distributed"
        r"|matplotlib|asdf|asdf_astropy|sep|astroscrappy|astroquery|astroplan|tifffile|PIL|yaml|concurrent"
        r"|collections|dataclasses|typing|os|io|logging|threading|argparse)(\..*)?",
    ),
]
suppress_warnings = ["ref.python", "autosummary", "app.add_directive", "toc.not_included"]

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


def _resolve_top_level(app, env, node, contnode):
    """
    ``astrophot.SolvedFrame`` (the name users import) resolves to where the API pages document it
    (``astrophot.frames.SolvedFrame``): the package's own lazy map of public names says where.
    ``astrophot.DQFlag.bad_bits`` (a member) resolves the same way.
    """
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or not target.startswith("astrophot."):
        return None
    name, _, member = target[len("astrophot.") :].partition(".")
    module = astrophot._PUBLIC.get(name)
    if module is None:
        return None
    new = f"{module}.{name}" + (f".{member}" if member else "")
    domain = env.get_domain("py")
    for role in (node.get("reftype"), "obj"):
        found = domain.resolve_xref(env, node.get("refdoc"), app.builder, role, new, node, contnode)
        if found is not None:
            return found
    return None


def setup(app):
    app.connect("missing-reference", _resolve_top_level)
