# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""The user's bad-pixel YAML: bad columns, rows and rectangles (1-based, inclusive, as ds9 shows them)."""

import logging
import re
import warnings
from pathlib import Path

import numpy as np
import yaml

from astrophot.exceptions import AstrophotUserWarning, UserRegionsError
from astrophot.frames import DQFlag

__all__ = ["BadPixelRegions"]

log = logging.getLogger(__name__)

_KEYS = ("bad_columns", "bad_rows", "bad_rectangles")
_COMMENT = re.compile(r"^\s*#\s?(.*)$")
_TRAILING = re.compile(r"\s#\s?(.*)$")
_INT_TAG = "tag:yaml.org,2002:int"
_NULL_TAG = "tag:yaml.org,2002:null"


def _header_comments(lines):
    """The comment lines at the top of a regions file, before any content."""
    header = []
    for line in lines:
        match = _COMMENT.match(line)
        if match:
            header.append(match.group(1).rstrip())
        elif line.strip():
            break
    return header


def _trailing_comment(lines, mark):
    """The comment after a node on its last line, or None."""
    if mark.line >= len(lines):
        return None
    rest = lines[mark.line][mark.column :]
    found = _TRAILING.search(" " + rest) if not rest.startswith("#") else re.match(r"#\s?(.*)$", rest)
    return found.group(1).rstrip() if found else None


class BadPixelRegions:
    """
    Bad columns, rows and rectangles marked by the user.

    Numbers are **1-based and inclusive**, as ds9 shows them: column 1 is the
    first column; the rectangle ``[row_start, row_end, col_start, col_end]``
    ``[2, 3, 60, 62]`` covers 0-based rows 1-2 and columns 59-61.

    Parameters
    ----------
    columns : iterable of int, optional
        Whole bad columns.
    rows : iterable of int, optional
        Whole bad rows.
    rectangles : iterable of 4 ints, optional
        ``(row_start, row_end, col_start, col_end)``.
    comments : dict, optional
        ``{('bad_columns', 123): 'text', ...}``: comments written after the
        entries by `to_yaml` (kept from `from_yaml`).
    header : sequence of str, optional
        Comment lines written at the top by `to_yaml`.
    source : str, optional
        Where the regions came from (for messages).

    See Also
    --------
    find_bad_pixels : Turns regions into `~astrophot.BadPixelMap` flags.
    find_bad_columns : Finds bad columns and rows of a frame.

    Examples
    --------
    >>> from astrophot.calibration import BadPixelRegions
    >>> regions = BadPixelRegions.from_yaml('''
    ... bad_columns: [10]
    ... bad_rectangles:
    ...   - [2, 3, 60, 62]   # dust
    ... ''')
    >>> mask = regions.to_mask((5, 70))
    >>> [int(r) for r in mask[:, 59].nonzero()[0]], [int(c) for c in mask[1].nonzero()[0]]
    ([1, 2], [9, 59, 60, 61])
    >>> print(regions.to_yaml())
    bad_columns:
      - 10
    bad_rows: []
    bad_rectangles:
      - [2, 3, 60, 62]  # dust
    <BLANKLINE>
    """

    def __init__(self, *, columns=(), rows=(), rectangles=(), comments=None, header=(), source=None):
        self.columns = tuple(sorted({self._positive(c, "bad_columns") for c in columns}))
        self.rows = tuple(sorted({self._positive(r, "bad_rows") for r in rows}))
        rects = []
        for rect in rectangles:
            rect = tuple(self._positive(v, "bad_rectangles") for v in rect)
            if len(rect) != 4 or rect[0] > rect[1] or rect[2] > rect[3]:
                raise ValueError(
                    "a rectangle is [row_start, row_end, col_start, col_end] with start <= end, "
                    f"not {list(rect)}"
                )
            if rect not in rects:
                rects.append(rect)
        self.rectangles = tuple(rects)
        self.comments = dict(comments or {})
        self.header = tuple(header)
        self.source = source

    @staticmethod
    def _positive(value, what):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{what} entries are 1-based numbers >= 1, not {value!r}")
        return int(value)

    # ------------------------------------------------------------------
    @classmethod
    def from_yaml(cls, path_or_text):
        """
        Read regions from a YAML file or text.

        Parameters
        ----------
        path_or_text : str or path-like
            A path (`~pathlib.Path`, or a one-line string naming an existing
            file or ending in ``.yml``/``.yaml``) or the YAML text itself. The
            keys ``bad_columns``, ``bad_rows`` and ``bad_rectangles`` are all
            optional; an empty file means no regions.

        Returns
        -------
        BadPixelRegions

        Raises
        ------
        astrophot.exceptions.UserRegionsError
            The file is missing or malformed: the message gives the file, the
            line and the reason.
        """
        text, source = cls._read(path_or_text)
        node = cls._compose(text, source)
        lines = text.splitlines()
        header = _header_comments(lines)
        if node is None or (node.tag == _NULL_TAG and isinstance(node, yaml.ScalarNode)):
            return cls(header=header, source=source)
        if not isinstance(node, yaml.MappingNode):
            raise UserRegionsError(
                f"{source}: line {node.start_mark.line + 1}: expected a mapping with the keys "
                f"{', '.join(_KEYS)}; found {cls._kind(node)}"
            )
        values = {key: [] for key in _KEYS}
        comments = {}
        seen = set()
        for key_node, value_node in node.value:
            key = cls._key(key_node, seen, source)
            if isinstance(value_node, yaml.ScalarNode) and value_node.tag == _NULL_TAG:
                continue
            if not isinstance(value_node, yaml.SequenceNode):
                raise UserRegionsError(
                    f"{source}: line {value_node.start_mark.line + 1}: {key} must be a list, "
                    f"found {cls._kind(value_node)}"
                )
            for item in value_node.value:
                value = cls._entry(key, item, f"{source}: line {item.start_mark.line + 1}")
                values[key].append(value)
                comment = _trailing_comment(lines, item.end_mark)
                if comment:
                    comments[(key, value)] = comment
        return cls(
            columns=values["bad_columns"],
            rows=values["bad_rows"],
            rectangles=values["bad_rectangles"],
            comments=comments,
            header=header,
            source=source,
        )

    @staticmethod
    def _compose(text, source):
        try:
            return yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = f"line {mark.line + 1}" if mark is not None else "somewhere"
            reason = exc.problem or str(exc)
            raise UserRegionsError(f"{source}: {line}: not valid YAML ({reason})") from None
        except yaml.YAMLError as exc:
            raise UserRegionsError(f"{source}: not valid YAML ({exc})") from None

    @staticmethod
    def _key(key_node, seen, source):
        where = f"{source}: line {key_node.start_mark.line + 1}"
        key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
        if key not in _KEYS:
            raise UserRegionsError(f"{where}: unknown key {key!r}; the keys are {', '.join(_KEYS)}")
        if key in seen:
            raise UserRegionsError(f"{where}: {key} appears twice")
        seen.add(key)
        return key

    @classmethod
    def _entry(cls, key, item, where):
        if key == "bad_rectangles":
            return cls._rectangle(item, where)
        what = "column" if key == "bad_columns" else "row"
        return cls._number(item, where, f"{key} entries must be {what} numbers")

    @staticmethod
    def _read(path_or_text):
        if isinstance(path_or_text, Path) or (
            isinstance(path_or_text, str)
            and "\n" not in path_or_text
            and (path_or_text.lower().endswith((".yml", ".yaml")) or Path(path_or_text).is_file())
        ):
            path = Path(path_or_text)
            try:
                return path.read_text(encoding="utf-8"), str(path)
            except FileNotFoundError:
                raise UserRegionsError(f"{path}: no such file") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise UserRegionsError(f"{path}: cannot be read ({exc})") from None
        if not isinstance(path_or_text, str):
            raise TypeError(f"expected a path or YAML text, not {type(path_or_text).__name__}")
        return path_or_text, "<YAML text>"

    @staticmethod
    def _kind(node):
        if isinstance(node, yaml.MappingNode):
            return "a mapping"
        if isinstance(node, yaml.SequenceNode):
            return "a list"
        return f"the value {node.value!r}"

    @classmethod
    def _number(cls, node, where, what):
        if not isinstance(node, yaml.ScalarNode) or node.tag != _INT_TAG:
            raise UserRegionsError(f"{where}: {what} (1-based, as ds9 shows them), found {cls._kind(node)}")
        value = yaml.SafeLoader("").construct_object(node)
        if value < 1:
            raise UserRegionsError(f"{where}: {what} >= 1 (1-based, as ds9 shows them), found {value}")
        return value

    @classmethod
    def _rectangle(cls, node, where):
        shape = "[row_start, row_end, col_start, col_end]"
        if not isinstance(node, yaml.SequenceNode) or len(node.value) != 4:
            found = f"{len(node.value)} numbers" if isinstance(node, yaml.SequenceNode) else cls._kind(node)
            raise UserRegionsError(f"{where}: a rectangle is {shape}, found {found}")
        values = tuple(
            cls._number(v, where, f"rectangle corners {shape} must be numbers") for v in node.value
        )
        if values[0] > values[1] or values[2] > values[3]:
            raise UserRegionsError(f"{where}: rectangle {list(values)} has a start after its end ({shape})")
        return values

    # ------------------------------------------------------------------
    def to_yaml(self):
        """
        The regions as YAML text, ready to save or paste into the user file.

        Returns
        -------
        str
            The header comment lines, then ``bad_columns``, ``bad_rows`` and
            ``bad_rectangles`` (empty lists written as ``[]``), entries with
            their comments.
        """
        out = [f"# {line}".rstrip() for line in self.header]
        sections = (
            ("bad_columns", self.columns),
            ("bad_rows", self.rows),
            ("bad_rectangles", self.rectangles),
        )
        for key, entries in sections:
            if not entries:
                out.append(f"{key}: []")
                continue
            out.append(f"{key}:")
            for entry in entries:
                text = f"[{', '.join(str(v) for v in entry)}]" if key == "bad_rectangles" else str(entry)
                comment = self.comments.get((key, entry))
                out.append(f"  - {text}" + (f"  # {comment}" if comment else ""))
        return "\n".join(out) + "\n"

    def to_mask(self, shape):
        """
        Boolean mask of the regions for an image of ``shape``.

        Entries outside the image are skipped (rectangles clipped) with an
        `~astrophot.exceptions.AstrophotUserWarning`.

        Parameters
        ----------
        shape : tuple of int
            ``(rows, columns)`` of the image.

        Returns
        -------
        numpy.ndarray of bool
            True in the regions.
        """
        flags = self.to_flags(shape)
        return flags != 0

    def to_flags(self, shape):
        """
        `~astrophot.DQFlag` bits of the regions.

        ``USER`` everywhere, plus ``BAD_COLUMN`` and ``BAD_ROW`` on whole
        columns and rows.

        Parameters
        ----------
        shape : tuple of int
            ``(rows, columns)`` of the image.

        Returns
        -------
        numpy.ndarray of uint32
            The bits, zero outside the regions.
        """
        ny, nx = (int(n) for n in shape)
        flags = np.zeros((ny, nx), dtype=np.uint32)
        outside = []
        user = np.uint32(DQFlag.USER)
        column_bits = np.uint32(DQFlag.USER | DQFlag.BAD_COLUMN)
        row_bits = np.uint32(DQFlag.USER | DQFlag.BAD_ROW)
        for c in self.columns:
            if c <= nx:
                flags[:, c - 1] |= column_bits
            else:
                outside.append(f"column {c}")
        for r in self.rows:
            if r <= ny:
                flags[r - 1, :] |= row_bits
            else:
                outside.append(f"row {r}")
        for r0, r1, c0, c1 in self.rectangles:
            if r0 > ny or c0 > nx:
                outside.append(f"rectangle {[r0, r1, c0, c1]}")
                continue
            if r1 > ny or c1 > nx:
                outside.append(f"part of rectangle {[r0, r1, c0, c1]}")
            flags[r0 - 1 : min(r1, ny), c0 - 1 : min(c1, nx)] |= user
        if outside:
            where = self.source or "bad-pixel regions"
            warnings.warn(
                f"{where}: outside the {ny}x{nx} image (rows x columns), ignored: {', '.join(outside)}",
                AstrophotUserWarning,
                stacklevel=3,
            )
        return flags

    def merge(self, other):
        """
        The union of two sets of regions.

        Parameters
        ----------
        other : BadPixelRegions

        Returns
        -------
        BadPixelRegions
            Entries, comments and header lines of both.
        """
        comments = {**other.comments, **self.comments}
        header = list(self.header) + [h for h in other.header if h not in self.header]
        return BadPixelRegions(
            columns=(*self.columns, *other.columns),
            rows=(*self.rows, *other.rows),
            rectangles=(*self.rectangles, *other.rectangles),
            comments=comments,
            header=header,
            source=self.source,
        )

    def __len__(self):
        return len(self.columns) + len(self.rows) + len(self.rectangles)

    def __eq__(self, other):
        if not isinstance(other, BadPixelRegions):
            return NotImplemented
        return (self.columns, self.rows, set(self.rectangles)) == (
            other.columns,
            other.rows,
            set(other.rectangles),
        )

    __hash__ = None

    def __repr__(self):
        return (
            f"<BadPixelRegions columns={list(self.columns)} rows={list(self.rows)} "
            f"rectangles={[list(r) for r in self.rectangles]}>"
        )
