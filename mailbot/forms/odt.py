"""Read an OpenDocument text (.odt package or flat .fodt) into ``Document``.

Participants who use LibreOffice send the form back as .odt; its content.xml maps
onto the same paragraphs and tables as docx, so the shared extractor reads it. Form
controls (draw:control → form:*) become controls; tracked deletions, notes and
annotations are skipped.
"""

from __future__ import annotations

from lxml import etree

from mailbot.errors import FormError
from mailbot.forms.extract import Block, Control, Document, Inline, Para, Table
from mailbot.forms.model import Limits
from mailbot.forms.safety import SafeZip, check_counts, parse_xml

__all__ = ["read_odt"]

_OFFICE = "urn:oasis:names:tc:opendocument:xmlns:office:1.0"
_TEXT = "urn:oasis:names:tc:opendocument:xmlns:text:1.0"
_TABLE = "urn:oasis:names:tc:opendocument:xmlns:table:1.0"
_DRAW = "urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"
_FORM = "urn:oasis:names:tc:opendocument:xmlns:form:1.0"
_XML = "http://www.w3.org/XML/1998/namespace"

_T = f"{{{_TEXT}}}"
_TB = f"{{{_TABLE}}}"
_O = f"{{{_OFFICE}}}"
_D = f"{{{_DRAW}}}"
_F = f"{{{_FORM}}}"

_PARAGRAPHS = frozenset({_T + "p", _T + "h"})
_CONTAINERS = frozenset(
    {
        _T + "list",
        _T + "list-item",
        _T + "list-header",
        _T + "section",
        _TB + "table-header-rows",
        _TB + "table-rows",
        _TB + "table-row-group",
        _T + "index-body",
        _O + "text",
    }
)
_SKIP = frozenset(
    {
        _T + "tracked-changes",
        _O + "annotation",
        _O + "annotation-end",
        _T + "note",
        _T + "sequence-decls",
        _T + "variable-decls",
        _T + "user-field-decls",
        _O + "forms",
        _T + "soft-page-break",
        _T + "bookmark",
        _T + "bookmark-start",
        _T + "bookmark-end",
    }
)
_MAX_DEPTH = 60


def read_odt(data: bytes, limits: Limits) -> Document:
    """Parse .odt/.fodt bytes; raises ``FormError`` with a reason when unreadable."""
    if data.startswith(b"PK"):
        package = SafeZip(data, limits)
        if "content.xml" not in package.names:
            raise FormError("odt package has no content.xml")
        if "META-INF/manifest.xml" in package.names:
            manifest = package.read("META-INF/manifest.xml")
            if b"encryption-data" in manifest:
                raise FormError("password-protected odt")
        root = parse_xml(package.read("content.xml"), "content.xml")
    else:
        if len(data) > limits.max_decompressed_bytes:
            raise FormError("flat odt is too large")
        root = parse_xml(data, "fodt")
    check_counts(root, (_T + "p", _T + "h"), (_TB + "table-row",), limits)
    body = root.find(f"{_O}body/{_O}text")
    if body is None:
        raise FormError("odt has no text body")
    walker = _Walker(_form_controls(root))
    return Document(blocks=walker.blocks(body, 0), controls=walker.controls)


def _form_controls(root: etree._Element) -> dict[str, Control]:
    """Form controls by id (office:forms), to be placed where draw:control refers to them."""
    controls: dict[str, Control] = {}
    forms = root.find(f".//{_O}forms")
    if forms is None:
        return controls
    for el in forms.iter():
        if (
            not isinstance(el.tag, str)
            or not el.tag.startswith(_F)
            or el.tag == _F + "form"
        ):
            continue
        ident = el.get(_F + "id") or el.get(f"{{{_XML}}}id")
        if not ident:
            continue
        kind = el.tag[len(_F) :]
        name = el.get(_F + "name")
        label = el.get(_F + "label")
        if kind == "checkbox":
            state = el.get(_F + "current-state") or el.get(_F + "state") or ""
            controls[ident] = Control(key=name, label=label, checked=state == "checked")
        elif kind in (
            "text",
            "textarea",
            "formatted-text",
            "number",
            "date",
            "combobox",
        ):
            value = el.get(_F + "current-value") or el.get(_F + "value")
            controls[ident] = Control(key=name, label=label, value=value or None)
    return controls


class _Walker:
    def __init__(self, form_controls: dict[str, Control]) -> None:
        self.form_controls = form_controls
        self.controls: list[Control] = []

    def blocks(self, parent: etree._Element, depth: int) -> list[Block]:
        out: list[Block] = []
        if depth > _MAX_DEPTH:
            return out
        for child in parent:
            tag = child.tag
            if not isinstance(tag, str) or tag in _SKIP:
                continue
            if tag in _PARAGRAPHS:
                inlines: list[Inline] = []
                extra: list[Block] = []
                self.inline(child, inlines, extra, depth + 1)
                out.append(Para(inlines))
                out.extend(extra)
            elif tag == _TB + "table":
                out.append(self.table(child, depth + 1))
            elif tag in _CONTAINERS:
                out.extend(self.blocks(child, depth + 1))
        return out

    def table(self, table: etree._Element, depth: int) -> Table:
        rows: list[list[list[Block]]] = []
        for row in self._rows(table, depth):
            cells: list[list[Block]] = []
            for cell in row:
                if not isinstance(cell.tag, str):
                    continue
                if cell.tag == _TB + "table-cell":
                    cells.append(self.blocks(cell, depth + 1))
                elif cell.tag == _TB + "covered-table-cell":
                    cells.append([])
            rows.append(cells)
        return Table(rows)

    def _rows(self, parent: etree._Element, depth: int) -> list[etree._Element]:
        out: list[etree._Element] = []
        for child in parent:
            if child.tag == _TB + "table-row":
                out.append(child)
            elif child.tag in _CONTAINERS and depth < _MAX_DEPTH:
                out.extend(self._rows(child, depth + 1))
        return out

    def inline(
        self, parent: etree._Element, out: list[Inline], extra: list[Block], depth: int
    ) -> None:
        if parent.text:
            out.append(parent.text)
        if depth > _MAX_DEPTH:
            return
        for child in parent:
            tag = child.tag
            if isinstance(tag, str) and tag not in _SKIP:
                if tag == _T + "s":
                    try:
                        count = int(child.get(_T + "c", "1"))
                    except ValueError:
                        count = 1
                    out.append(" " * max(1, min(count, 200)))
                elif tag == _T + "tab":
                    out.append("\t")
                elif tag == _T + "line-break":
                    out.append("\n")
                elif tag == _T + "placeholder":
                    pass  # a placeholder's prompt is empty
                elif tag == _D + "control":
                    control = self.form_controls.get(child.get(_D + "control") or "")
                    if control is not None:
                        self.controls.append(control)
                        out.append(control)
                elif tag == _D + "frame" or tag == _D + "text-box":
                    box = (
                        child if tag == _D + "text-box" else child.find(_D + "text-box")
                    )
                    if box is not None:
                        extra.extend(self.blocks(box, depth + 1))
                elif tag in _PARAGRAPHS:
                    self.inline(child, out, extra, depth + 1)
                else:
                    self.inline(child, out, extra, depth + 1)
            if child.tail:
                out.append(child.tail)
