# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""Pass bands of the filters in iTelescope.net's filter wheels (nominal centres and widths)."""

from dataclasses import dataclass

__all__ = ["FILTERS", "FilterBand", "UnknownFilterError", "bandwidth_ratio", "get_filter"]

_ITEL = "iTelescope.net telescope pages (filter wheels: Astrodon LRGB E-series, Astrodon narrow-band)"
_NOMINAL = "nominal FWHM of the Astrodon product line; not read from a measured transmission curve"


class UnknownFilterError(KeyError):
    """No pass band is known for a filter name."""


@dataclass(frozen=True)
class FilterBand:
    """
    A filter's pass band.

    Parameters
    ----------
    name : str
        Canonical name (as in iTelescope headers: ``'Ha'``, ``'OIII'``, ``'Red'``...).
    center : float
        Central wavelength (nm).
    width : float
        Full width at half maximum (nm).
    line : str or None
        The emission line a narrow-band filter isolates.
    source : str
        Where the numbers come from.
    """

    name: str
    center: float
    width: float
    line: str | None = None
    source: str = ""


#: Nominal pass bands; narrow bands are the 3 nm Astrodon filters most iTelescope telescopes carry.
FILTERS = {
    band.name: band
    for band in (
        FilterBand("Luminance", 550.0, 300.0, None, f"{_ITEL}; {_NOMINAL} (400-700 nm)"),
        FilterBand("Red", 647.5, 105.0, None, f"{_ITEL}; {_NOMINAL} (595-700 nm)"),
        FilterBand("Green", 540.0, 100.0, None, f"{_ITEL}; {_NOMINAL} (490-590 nm)"),
        FilterBand("Blue", 450.0, 100.0, None, f"{_ITEL}; {_NOMINAL} (400-500 nm)"),
        FilterBand("Ha", 656.3, 3.0, "H-alpha", f"{_ITEL}; {_NOMINAL} (3 nm)"),
        FilterBand("OIII", 500.7, 3.0, "[OIII] 500.7 nm", f"{_ITEL}; {_NOMINAL} (3 nm)"),
        FilterBand("SII", 671.6, 3.0, "[SII] 671.6/673.1 nm", f"{_ITEL}; {_NOMINAL} (3 nm)"),
        FilterBand("V", 551.0, 88.0, None, "Johnson V (Bessell 1990, PASP 102, 1181)"),
        FilterBand("B", 445.0, 94.0, None, "Johnson B (Bessell 1990, PASP 102, 1181)"),
        FilterBand("I", 806.0, 149.0, None, "Cousins I (Bessell 1990, PASP 102, 1181)"),
    )
}

_ALIASES = {
    "l": "Luminance",
    "lum": "Luminance",
    "clear": "Luminance",
    "r": "Red",
    "g": "Green",
    "b": "Blue",
    "h": "Ha",
    "halpha": "Ha",
    "h-alpha": "Ha",
    "h_alpha": "Ha",
    "o3": "OIII",
    "[oiii]": "OIII",
    "s2": "SII",
    "[sii]": "SII",
}


def _key(name):
    text = str(name).strip().lower()
    for band in FILTERS:
        if band.lower() == text:
            return band
    return _ALIASES.get(text)


def get_filter(name):
    """
    The `FilterBand` of a filter name (case-insensitive; 'H-alpha', 'R', 'Lum' ... accepted).

    Raises
    ------
    UnknownFilterError

    Examples
    --------
    >>> from astrophot.instruments.itelescope import get_filter
    >>> get_filter("h-alpha").width
    3.0
    """
    key = _key(name) if name is not None else None
    if key is None:
        raise UnknownFilterError(f"no pass band known for filter {name!r}; known: {sorted(FILTERS)}")
    return FILTERS[key]


def bandwidth_ratio(narrow, broad):
    """
    Width of the narrow filter over the width of the broad one (a first guess of the continuum scale).

    Examples
    --------
    >>> from astrophot.instruments.itelescope import bandwidth_ratio
    >>> round(bandwidth_ratio("Ha", "Red"), 4)
    0.0286
    """
    return get_filter(narrow).width / get_filter(broad).width
