# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Instrument knowledge: telescopes, sites, cameras and file-name conventions.

`astrophot.instruments.itelescope` covers iTelescope.net (telescope table,
sites, file names, download preparation). Other observatories work through
`astrophot.instruments.itelescope.site_from_header` (``SITELAT``/``SITELONG``)
or an `astropy.coordinates.EarthLocation`.
"""

__all__ = ["itelescope"]


def __getattr__(name):
    if name == "itelescope":
        import importlib

        module = importlib.import_module(f"{__name__}.itelescope")
        globals()[name] = module
        return module
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
