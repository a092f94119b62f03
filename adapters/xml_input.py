"""Parse an XML document a user handed us (xmeml, FCPXML, TTML), or say in one line why it cannot be read."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

from ..core.errors import InputError


def parse_xml(
    data: str | bytes | os.PathLike, source: object, what: str, root_tag: str | None = None
) -> ET.Element:
    """The root element of ``data`` (text, bytes, or a path to read). ``source`` names the file in errors and
    ``what`` the kind of document expected ("FCPXML", "Premiere/FCP7 XML"); with ``root_tag`` any other root
    is refused too."""
    try:
        if isinstance(data, (str, bytes)):
            root = ET.fromstring(data)
        else:
            root = ET.parse(Path(data)).getroot()
    except OSError as exc:
        raise InputError(f"{source}: cannot read this {what} file ({exc.strerror or exc})") from None
    except ET.ParseError as exc:
        raise InputError(
            f"{source}: not a readable {what} file: the XML is not well-formed ({exc})"
        ) from None
    if root_tag is not None and root.tag != root_tag:
        raise InputError(
            f"{source}: not a {what} document (root element <{root.tag}>, expected <{root_tag}>)"
        )
    return root
