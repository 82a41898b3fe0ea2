# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
Exceptions and warnings raised by astrophot.

Every error astrophot raises derives from `AstrophotError`; most also
derive from the matching built-in (`ValueError`, `TypeError`, `OSError`)
so that generic handlers keep working.
"""

__all__ = [
    "AnalysisError",
    "AstrometryError",
    "AstrophotError",
    "AstrophotUserWarning",
    "CalibrationError",
    "CombinationError",
    "FrameMismatchError",
    "FrameReadError",
    "FrameTypeError",
    "FrameWriteError",
    "InvalidKeywordError",
    "MissingKeywordError",
    "ProvenanceError",
    "UnsafeArchiveError",
    "UserRegionsError",
]


class AstrophotError(Exception):
    """Base class of every error raised by astrophot."""


class FrameTypeError(AstrophotError, TypeError):
    """A frame of the wrong type was given to a transform."""


class FrameMismatchError(AstrophotError, ValueError):
    """Two frames that must agree (shape, binning, unit, ...) do not."""


class MissingKeywordError(AstrophotError, KeyError):
    """
    A FITS keyword needed by a transform is absent.

    Parameters
    ----------
    keyword : str
        The keyword that was looked for first.
    alternatives : sequence of str, optional
        Other keywords that would also have been accepted.
    source : str, optional
        The file (or a description of the in-memory frame) that lacks it.
    purpose : str, optional
        What the keyword was needed for.
    """

    def __init__(self, keyword, alternatives=(), source=None, purpose=None):
        self.keyword = keyword
        self.alternatives = tuple(alternatives)
        self.source = source
        self.purpose = purpose
        super().__init__(keyword)

    def __str__(self):
        names = [self.keyword, *self.alternatives]
        accepted = " or ".join(names)
        where = self.source or "<in-memory frame>"
        msg = f"{where}: missing FITS keyword {accepted}"
        if self.purpose:
            msg += f" (needed for {self.purpose})"
        return msg


class FrameReadError(AstrophotError, OSError):
    """A file could not be read as a frame (corrupt, truncated, no image)."""


class FrameWriteError(AstrophotError, OSError):
    """A frame could not be written (existing file, raw-data path, I/O error)."""


class ProvenanceError(AstrophotError, ValueError):
    """A provenance record is invalid or a referenced input cannot be found."""


class CalibrationError(AstrophotError, ValueError):
    """Calibration inputs are unusable (empty set, no suitable master, ...)."""


class UserRegionsError(AstrophotError, ValueError):
    """A user bad-pixel YAML file is malformed."""


class UnsafeArchiveError(AstrophotError, ValueError):
    """An archive holds an entry that would escape its directory."""


class AnalysisError(AstrophotError, ValueError):
    """An image cannot be analysed (no unmasked sky, no usable stars, ...)."""


class AstrometryError(AstrophotError, RuntimeError):
    """No verified astrometric solution could be found."""


class AstrophotUserWarning(UserWarning):
    """A warning about data or parameters that the user should look at."""


class InvalidKeywordError(AstrophotError, ValueError):
    """
    A FITS keyword a transform needs is present but its value is unusable.

    Parameters
    ----------
    keyword : str
        The card.
    value : object
        The value found.
    reason : str
        Why it is refused (``"must be a finite number of seconds >= 0"``).
    source : str, optional
        The file (or a description of the in-memory frame).
    """

    def __init__(self, keyword, value, reason, source=None):
        self.keyword = keyword
        self.value = value
        self.reason = reason
        self.source = source
        super().__init__(keyword)

    def __str__(self):
        where = self.source or "<in-memory frame>"
        return f"{where}: FITS keyword {self.keyword} = {self.value!r} is invalid ({self.reason})"


class CombinationError(AstrophotError, ValueError):
    """A resampling, stacking or mosaicking step cannot proceed (no overlap, grid too large, ...)."""
