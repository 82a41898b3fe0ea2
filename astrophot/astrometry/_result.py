# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""What a backend hands back before verification, and how it says it cannot run."""

from dataclasses import dataclass, field

from astrophot.exceptions import AstrometryError

__all__ = ["BackendUnavailable", "Candidate", "StarList"]


class BackendUnavailable(AstrometryError):
    """A backend cannot run here (program, package, index files or API key missing)."""


@dataclass
class Candidate:
    """
    A proposed solution, not yet verified.

    Attributes
    ----------
    wcs : `~astropy.wcs.WCS`
    reference : `~astropy.table.QTable` or None
        Catalogue stars the backend matched against (``ra``, ``dec``,
        ``mag``); None to use the reference catalogue.
    details : dict
        Backend-specific facts (index file, log-odds, job id ...).
    """

    wcs: object
    reference: object = None
    details: dict = field(default_factory=dict)


@dataclass
class StarList:
    """
    The detected stars a solver works with.

    Attributes
    ----------
    x, y, flux : numpy.ndarray
        Every usable star (0-based pixels), brightest first.
    selected : numpy.ndarray of int
        Indices into ``x``/``y`` of the stars fed to a solver (brightest,
        spread over the field, bad corners excluded), in order.
    shape : tuple of int
        Frame shape ``(ny, nx)``.
    """

    x: object
    y: object
    flux: object
    selected: object
    shape: tuple

    @property
    def n_selected(self):
        """Number of stars fed to the solvers."""
        return len(self.selected)
