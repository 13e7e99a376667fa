"""Deterministic SDF 1.9 text from xml.etree elements (shared by the world and robot writers).

Numbers are written with at most six decimals and no trailing zeros, so the same inputs give
byte-identical files on every machine (the committed worlds are checked against regeneration).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable

XIAOMANLV_NS = "https://github.com/xiaomanlv/sdf"
SDF_VERSION = "1.9"


def num(value: float, digits: int = 6) -> str:
    """``value`` rounded to ``digits`` decimals, without trailing zeros and without ``-0``."""
    text = f"{round(float(value), digits):.{digits}f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def nums(values: Iterable[float], digits: int = 6) -> str:
    return " ".join(num(v, digits) for v in values)


def sub(parent: ET.Element, tag: str, text: str | float | None = None, **attrib: str) -> ET.Element:
    """Append ``<tag attrib>text</tag>`` to ``parent``; floats go through :func:`num`."""
    element = ET.SubElement(parent, tag, attrib)
    if text is not None:
        element.text = text if isinstance(text, str) else num(text)
    return element


def sdf_root() -> ET.Element:
    return ET.Element("sdf", {"version": SDF_VERSION, "xmlns:xiaomanlv": XIAOMANLV_NS})


def to_text(root: ET.Element, header: str) -> str:
    """The document as text: XML declaration, a comment header, two-space indentation."""
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode", short_empty_elements=True)
    comment = "\n".join(f"  {line}".rstrip() for line in header.strip().splitlines())
    return f'<?xml version="1.0"?>\n<!--\n{comment}\n-->\n{body}\n'
