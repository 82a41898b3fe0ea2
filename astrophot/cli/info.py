# Licensed under a 3-clause BSD style license - see LICENSE.rst
"""
``astrophot info FILE...``: what a file is and where it came from.

It reads only the FITS header and the provenance sidecar's YAML (no pixels, no ASDF
extensions), so it starts fast; files that are not frames (star tables, region files,
sidecars, archives) are named for what they are.
"""

import re
from pathlib import Path

__all__ = ["register"]

_KINDS = (
    (b"# %ECSV", "an ECSV table (a star list? `astrophot find-stars` writes them)"),
    (b"# Region file format", "a ds9 region file"),
    (b"#ASDF", "an ASDF file (a frame's provenance sidecar: run info on its .fits)"),
    (b"PK\x03\x04", "a zip archive (`astrophot prepare` unpacks downloads)"),
)


def register(subparsers):
    parser = subparsers.add_parser(
        "info",
        help="describe frames: type, shape, exposure, filter, provenance",
        description=(
            "Describe files: a frame's type, shape, exposure, filter, binning, gain, time, "
            "temperatures, telescope, target, pointing, WCS and provenance steps (from the header "
            "and the sidecar, without reading pixels); other files are named for what they are."
        ),
    )
    parser.add_argument("files", nargs="+", metavar="FILE", help="FITS frames (or any file)")
    parser.set_defaults(func=_run)


def _fmt(value):
    return "-" if value is None or value == "" else str(value)


def _what(path):
    from astrophot.exceptions import FrameReadError

    path = Path(path)
    if not path.exists():
        raise FrameReadError(f"{path}: no such file")
    if path.is_dir():
        raise FrameReadError(f"{path}: is a directory (give the frames in it, e.g. {path}/*.fits)")
    with open(path, "rb") as handle:
        start = handle.read(80)
    if start.startswith(b"SIMPLE"):
        return "a FITS header saved as text" if b"\n" in start else None
    for magic, kind in _KINDS:
        if start.startswith(magic):
            return kind
    raise FrameReadError(f"{path}: not a FITS file, nor a file astrophot writes")


def _steps(sidecar):
    """The provenance id and steps from a sidecar's YAML (tags ignored), or None."""
    import yaml

    class _Loader(yaml.SafeLoader):
        pass

    def _untagged(loader, suffix, node):
        if isinstance(node, yaml.MappingNode):
            return loader.construct_mapping(node, deep=True)
        if isinstance(node, yaml.SequenceNode):
            return loader.construct_sequence(node, deep=True)
        return loader.construct_scalar(node)

    _Loader.add_multi_constructor("", _untagged)
    try:
        text = Path(sidecar).read_bytes().split(b"\n...", 1)[0].decode("utf-8", "replace")
        tree = yaml.load(re.sub(r"^(#|%).*$", "", text, flags=re.M), Loader=_Loader)
        return tree.get("provenance") or None
    except (OSError, yaml.YAMLError, AttributeError):
        return None


def _value(text):
    text = text.split("/", 1)[0].strip() if not text.lstrip().startswith("'") else text.strip()
    if text.startswith("'"):
        end = text.find("'", 1)
        while end != -1 and text[end + 1 : end + 2] == "'":
            end = text.find("'", end + 2)
        return text[1:end].replace("''", "'").rstrip()
    if text in ("T", "F"):
        return text == "T"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text or None


def _headers(path, limit=3):
    """The first ``limit`` FITS headers as dicts, read as text (no astropy: info starts fast)."""
    headers = []
    with open(path, "rb") as handle:
        while len(headers) < limit:
            cards, previous = {}, None
            while True:
                block = handle.read(2880)
                if len(block) < 2880:
                    return headers
                for i in range(0, 2880, 80):
                    card = block[i : i + 80].decode("ascii", "replace")
                    key = card[:8].strip()
                    if key == "END":
                        break
                    if card[8:10] == "= " and key not in cards:
                        cards[key] = _value(card[10:])
                        previous = key
                    elif key == "CONTINUE" and str(cards.get(previous, "")).endswith("&"):
                        # a long string value goes on in CONTINUE cards
                        cards[previous] = cards[previous][:-1] + (_value(card[8:]) or "")
                else:
                    continue
                break
            headers.append(cards)
            size = abs(cards.get("BITPIX", 8)) // 8 * cards.get("GCOUNT", 1)
            dims = [cards.get(f"NAXIS{i}", 0) for i in range(1, cards.get("NAXIS", 0) + 1)]
            n = 1
            for d in dims:
                n *= d
            nbytes = size * (n + cards.get("PCOUNT", 0)) if dims else 0
            handle.seek((nbytes + 2879) // 2880 * 2880, 1)
    return headers


def _image_header(header, headers):
    """The image's BITPIX/NAXISn/BZERO: ``header``'s, or a tile-compressed extension's (Z cards)."""
    if header.get("NAXIS", 0) != 0:
        return header, ""
    for hdu in headers[1:]:
        if hdu.get("ZIMAGE"):
            keys = ("BITPIX", "NAXIS1", "NAXIS2")
            image = {key: hdu.get(f"Z{key}") for key in keys}
            image["BZERO"] = hdu.get("BZERO")
            return image, f", tile-compressed {_fmt(hdu.get('ZCMPTYPE'))}"
    return header, ""


def _referenced_image(path, reference, image):
    """The image header of the product holding this frame's pixels, and where it is."""
    held = Path(path).parent / reference
    if not held.is_file():
        return image, f", pixels in {reference} (missing)"
    headers = _headers(held)
    image, packed = _image_header(headers[0], headers) if headers else (image, "")
    return image, f"{packed}, pixels in {reference}"


def _describe(path):
    headers = _headers(path)
    header = headers[0] if headers else {}
    if header.get("NAXIS", 0) == 0 and "APFRAME" not in header:
        for hdu in headers[1:]:
            if hdu.get("XTENSION") == "BINTABLE":
                return [f"  type        a FITS table ({hdu.get('NAXIS2')} rows), not a frame"]
            if hdu.get("NAXIS", 0) >= 2:
                header = hdu
                break
    frame_type = header.get("APFRAME") or f"raw frame (IMAGETYP {_fmt(header.get('IMAGETYP'))})"
    image, packed = _image_header(header, headers)
    if header.get("APPIXREF"):  # written with pixels_from: the pixels are in another product
        image, packed = _referenced_image(path, header["APPIXREF"], image)
    bitpix = {8: "uint8", 16: "int16", 32: "int32", -32: "float32", -64: "float64"}.get(image.get("BITPIX"))
    if image.get("BITPIX") == 16 and image.get("BZERO") == 32768:
        bitpix = "uint16"
    shape = f"{_fmt(image.get('NAXIS1'))} x {_fmt(image.get('NAXIS2'))}"
    lines = [
        f"  type        {frame_type}",
        f"  shape       {shape} ({bitpix}, {_fmt(header.get('BUNIT') or 'adu')}){packed}",
        f"  exposure    {_fmt(header.get('EXPTIME', header.get('EXPOSURE')))} s",
        f"  filter      {_fmt(header.get('FILTER'))}",
        f"  binning     {_fmt(header.get('XBINNING', 1))}x{_fmt(header.get('YBINNING', 1))}",
        f"  gain        {_fmt(header.get('EGAIN', header.get('GAIN')))}",
        f"  time (UTC)  {_fmt(header.get('DATE-OBS'))}",
        f"  set temp    {_fmt(header.get('SET-TEMP'))}   ccd temp {_fmt(header.get('CCD-TEMP'))}",
        f"  telescope   {_fmt(header.get('TELESCOP'))}   target {_fmt(header.get('OBJECT'))}",
        f"  pointing    {_fmt(header.get('OBJCTRA', header.get('RA')))} {_fmt(header.get('OBJCTDEC', header.get('DEC')))}",
        f"  wcs         {'yes' if header.get('CTYPE1') else 'no'}",
    ]
    sidecar = header.get("APSIDECR")
    provenance = _steps(Path(path).with_name(sidecar)) if sidecar else None
    if provenance is None:
        lines.append(
            "  provenance  none (not an astrophot product)"
            if not sidecar
            else "  provenance  unreadable sidecar"
        )
        return lines
    steps = provenance.get("steps") or []
    lines.append(f"  provenance  {len(steps)} step(s), id {provenance.get('id')}")
    for step in steps:
        lines.append(
            f"    - {step.get('function')} at {step.get('start_time')} ({len(step.get('inputs') or [])} input(s), "
            f"{float(step.get('duration') or 0):.2f} s)"
        )
    return lines


def _run(args):
    from astrophot.cli._common import run_batch

    shown = []

    def one(path):
        kind = _what(path)
        lines = [f"  type        {kind}"] if kind else _describe(path)
        if shown:
            print()
        print(path)
        print("\n".join(lines))
        shown.append(path)

    return run_batch("info", args.files, one, what="file")
