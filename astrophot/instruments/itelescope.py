# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
The iTelescope.net telescopes, sites, cameras, file names and download preparation.

- `TELESCOPES`, `get_telescope`, `Telescope`: the telescope table (site,
  optics, camera; `None` where a fact is unknown, with the source of each
  known fact in ``Telescope.sources``); `optics_table` renders their optics,
  fields and the astrometry.net index series for them.
- `SITES`, `get_site`, `Site`, `site_from_header`: observatory sites, and
  the site a FITS header gives (``SITELAT``/``SITELONG``), for any observatory.
- `parse_filename`, `ITelescopeFilename`, `make_raw_filename`,
  `make_master_filename`, `output_name`: iTelescope file names.
- `prepare_download`, `PrepareReport`: unzip a download, remove spaces from
  names, fix permissions, safely.

Examples
--------
>>> from astrophot.instruments.itelescope import get_telescope, parse_filename
>>> name = parse_filename('raw-T31-davestrickland-webb-20211229-024225-Green-BIN1-W-300-001.fit')
>>> telescope = get_telescope(name.telescope)
>>> telescope.site.name, telescope.plate_scale.round(3)
('iTelescope Siding Spring', <Quantity 1.096 arcsec / pix>)
"""

from ._filenames import (
    FilenameError,
    ITelescopeFilename,
    make_master_filename,
    make_raw_filename,
    output_name,
    parse_filename,
)
from ._filters import FILTERS, FilterBand, UnknownFilterError, bandwidth_ratio, get_filter
from ._prepare import PrepareError, PrepareReport, prepare_download
from ._sites import SITES, Site, UnknownSiteError, get_site, parse_sexagesimal, site_from_header
from ._telescopes import TELESCOPES, Telescope, UnknownTelescopeError, get_telescope, optics_table

__all__ = [
    "FILTERS",
    "FilenameError",
    "FilterBand",
    "ITelescopeFilename",
    "PrepareError",
    "PrepareReport",
    "SITES",
    "Site",
    "TELESCOPES",
    "Telescope",
    "UnknownFilterError",
    "UnknownSiteError",
    "UnknownTelescopeError",
    "bandwidth_ratio",
    "get_filter",
    "get_site",
    "get_telescope",
    "make_master_filename",
    "make_raw_filename",
    "optics_table",
    "output_name",
    "parse_filename",
    "parse_sexagesimal",
    "prepare_download",
    "site_from_header",
]
