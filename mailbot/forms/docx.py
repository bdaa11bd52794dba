"""Read a .docx/.docm into the format-neutral ``Document``.

lxml on the main part only: python-docx would load the ~350 KB styles parts of
every copy for nothing, and it refuses .docm and Strict OOXML, which participants
send too. Read: paragraphs, tables (nested, with row/cell-level content controls),
content controls (text, drop-down, check box; placeholders are empty), legacy form
fields (FORMTEXT/FORMCHECKBOX/FORMDROPDOWN), text boxes, inserted text. Skipped:
deleted text, hidden and struck-through runs, field codes, the fallback copy of
alternate content.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, field

from lxml import etree

from mailbot.errors import FormError
from mailbot.forms.extract import Block, Control, Document, Inline, Para, Table
from mailbot.forms.model import Limits
from mailbot.forms.safety import SafeZip, check_counts, parse_xml

__all__ = ["read_docx"]

_W_NAMESPACES = (
    "http://schemas.openxmlformats.org/wordprocessingml/2006/main",
    "http://purl.oclc.org/ooxml/wordprocessingml/main",  # ISO Strict
)
_W14 = "http://schemas.microsoft.com/office/word/2010/wordml"
_MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"
_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_OFFICE_DOCUMENT = ("/officeDocument", "/officedocument")

_ALT = f"{{{_MC}}}AlternateContent"
_CHOICE = f"{{{_MC}}}Choice"
_FALLBACK = f"{{{_MC}}}Fallback"
_W14_CHECKBOX = f"{{{_W14}}}checkbox"
_W14_CHECKED = f"{{{_W14}}}checked"
_W14_VAL = f"{{{_W14}}}val"

_LOCAL_NAMES = (
    "body",
    "p",
    "tbl",
    "tr",
    "tc",
    "sdt",
    "sdtPr",
    "sdtContent",
    "customXml",
    "smartTag",
    "ins",
    "moveTo",
    "del",
    "moveFrom",
    "r",
    "t",
    "tab",
    "ptab",
    "br",
    "cr",
    "noBreakHyphen",
    "softHyphen",
    "sym",
    "fldChar",
    "instrText",
    "hyperlink",
    "fldSimple",
    "dir",
    "bdo",
    "drawing",
    "pict",
    "object",
    "txbxContent",
    "rPr",
    "vanish",
    "strike",
    "dstrike",
    "rStyle",
    "tag",
    "alias",
    "showingPlcHdr",
    "ffData",
    "name",
    "checkBox",
    "checked",
    "default",
    "ddList",
    "result",
    "listEntry",
)
# Full tag → local name, for both the transitional and the Strict namespace.
_TAGS: dict[str, str] = {
    f"{{{ns}}}{local}": local for ns in _W_NAMESPACES for local in _LOCAL_NAMES
}
_TRANSPARENT_INLINE = frozenset(
    {"hyperlink", "smartTag", "customXml", "ins", "moveTo", "fldSimple", "dir", "bdo"}
)
_TRANSPARENT_BLOCK = frozenset({"customXml", "ins", "moveTo"})
_PLACEHOLDER_STYLES = ("placeholder", "zastpczy", "zastepczy")
_MAX_DEPTH = 60


def read_docx(data: bytes, limits: Limits) -> Document:
    """Parse a docx package; raises ``FormError`` with a reason when it can't be read."""
    package = SafeZip(data, limits)
    main = _main_part(package)
    root = parse_xml(package.read(main), main)
    ns = root.tag[1:].split("}", 1)[0] if root.tag.startswith("{") else ""
    if ns not in _W_NAMESPACES or root.tag.rsplit("}", 1)[-1] != "document":
        raise FormError(f"{main} is not a WordprocessingML document")
    check_counts(root, (f"{{{ns}}}p",), (f"{{{ns}}}tr",), limits)
    walker = _Walker(ns)
    body = root.find(f"{{{ns}}}body")
    blocks = walker.blocks(body, 0) if body is not None else []
    return Document(blocks=blocks, controls=walker.controls)


def _main_part(package: SafeZip) -> str:
    """The main document part, found through _rels/.rels like Word does."""
    if "_rels/.rels" in package.names:
        rels = parse_xml(package.read("_rels/.rels"), "_rels/.rels")
        for rel in rels.iter(f"{{{_REL_NS}}}Relationship"):
            kind = str(rel.get("Type", ""))
            target = str(rel.get("Target", ""))
            if kind.endswith(_OFFICE_DOCUMENT) and target:
                name = posixpath.normpath(target.lstrip("/"))
                if name in package.names:
                    return name
    if "word/document.xml" in package.names:
        return "word/document.xml"
    raise FormError("docx package has no main document part")


@dataclass(slots=True)
class _Field:
    """An open complex field (fldChar begin … separate … end)."""

    ff: etree._Element | None
    instr: list[str] = field(default_factory=list)
    result: list[Inline] = field(default_factory=list)
    in_result: bool = False


class _Walker:
    def __init__(self, ns: str) -> None:
        self.w = f"{{{ns}}}"
        self.controls: list[Control] = []
        self.fields: list[_Field] = []

    def _attr(self, el: etree._Element | None, name: str = "val") -> str | None:
        if el is None:
            return None
        value = el.get(self.w + name)
        return None if value is None else str(value)

    # blocks ----------------------------------------------------------------------------

    def blocks(self, parent: etree._Element, depth: int) -> list[Block]:
        out: list[Block] = []
        if depth > _MAX_DEPTH:
            return out
        for child in parent:
            kind = _TAGS.get(child.tag) if isinstance(child.tag, str) else None
            if kind == "p":
                out.extend(self.paragraph(child, depth))
            elif kind == "tbl":
                out.append(self.table(child, depth))
            elif kind == "sdt":
                out.extend(self.block_sdt(child, depth))
            elif kind in _TRANSPARENT_BLOCK:
                out.extend(self.blocks(child, depth + 1))
            elif child.tag == _ALT:
                chosen = _choose(child)
                if chosen is not None:
                    out.extend(self.blocks(chosen, depth + 1))
        return out

    def table(self, tbl: etree._Element, depth: int) -> Table:
        rows: list[list[list[Block]]] = []
        for tr in self._children(tbl, "tr", depth):
            cells = [
                self.blocks(tc, depth + 1) for tc in self._children(tr, "tc", depth)
            ]
            rows.append(cells)
        return Table(rows)

    def _children(
        self, parent: etree._Element, want: str, depth: int
    ) -> list[etree._Element]:
        """Rows of a table / cells of a row, looking through sdt and customXml wrappers."""
        out: list[etree._Element] = []
        for child in parent:
            kind = _TAGS.get(child.tag) if isinstance(child.tag, str) else None
            if kind == want:
                out.append(child)
            elif kind in ("sdt", "customXml", "ins", "moveTo") and depth < _MAX_DEPTH:
                inner = child.find(self.w + "sdtContent") if kind == "sdt" else child
                if inner is not None:
                    out.extend(self._children(inner, want, depth + 1))
        return out

    def block_sdt(self, sdt: etree._Element, depth: int) -> list[Block]:
        pr = sdt.find(self.w + "sdtPr")
        content = sdt.find(self.w + "sdtContent")
        if content is None:
            return []
        tag = self._attr(pr.find(self.w + "tag") if pr is not None else None)
        if _is_placeholder(pr, self.w) or (tag and _looks_keyed(tag)):
            # A keyed or empty block control becomes one control, so its text is not
            # read a second time as plain text.
            control = self._control(pr, content, depth)
            return [Para([control])]
        return self.blocks(content, depth + 1)

    # paragraphs ------------------------------------------------------------------------

    def paragraph(self, p: etree._Element, depth: int) -> list[Block]:
        inlines: list[Inline] = []
        extra: list[Block] = []
        self.inline(p, inlines, extra, depth + 1)
        self._flush_fields(inlines)
        return [Para(inlines), *extra]

    def _emit(self, target: list[Inline], item: Inline) -> None:
        if self.fields:
            top = self.fields[-1]
            if top.in_result:
                top.result.append(item)
            elif isinstance(item, str):
                top.instr.append(item)
            return
        target.append(item)

    def inline(
        self, parent: etree._Element, out: list[Inline], extra: list[Block], depth: int
    ) -> None:
        if depth > _MAX_DEPTH:
            return
        w = self.w
        for child in parent:
            tag = child.tag
            if not isinstance(tag, str):
                continue
            kind = _TAGS.get(tag)
            if kind == "r":
                self.run(child, out, extra, depth)
            elif kind in _TRANSPARENT_INLINE:
                self.inline(child, out, extra, depth + 1)
            elif kind == "sdt":
                self.inline_sdt(child, out, extra, depth)
            elif tag == _ALT:
                chosen = _choose(child)
                if chosen is not None:
                    self.inline(chosen, out, extra, depth + 1)
            elif kind is None and not tag.startswith(w) and len(child):
                # Foreign wrappers (e.g. w14/w15 elements) may still hold runs.
                self.inline(child, out, extra, depth + 1)

    def run(
        self, r: etree._Element, out: list[Inline], extra: list[Block], depth: int
    ) -> None:
        w = self.w
        hidden = False
        rpr = r.find(w + "rPr")
        if rpr is not None:
            for flag in ("vanish", "strike", "dstrike"):
                # Hidden, or crossed out: a struck-through option or value was rejected.
                el = rpr.find(w + flag)
                if el is not None and self._attr(el) not in ("0", "false", "off"):
                    hidden = True
            style = (self._attr(rpr.find(w + "rStyle")) or "").lower()
            if any(s in style for s in _PLACEHOLDER_STYLES):
                hidden = True
        for child in r:
            tag = child.tag
            if not isinstance(tag, str):
                continue
            kind = _TAGS.get(tag)
            if kind == "t":
                if not hidden and child.text:
                    self._emit(out, child.text)
            elif kind in ("tab", "ptab"):
                if not hidden:
                    self._emit(out, "\t")
            elif kind in ("br", "cr"):
                if not hidden:
                    self._emit(out, "\n")
            elif kind == "noBreakHyphen":
                self._emit(out, "-")
            elif kind == "sym":
                code = self._attr(child, "char")
                if code and not hidden:
                    try:
                        value = int(code, 16)
                    except ValueError:
                        continue
                    self._emit(out, chr(value | 0xF000 if value < 0x100 else value))
            elif kind == "fldChar":
                self.field_char(child, out)
            elif kind == "instrText":
                if self.fields and child.text:
                    self.fields[-1].instr.append(child.text)
            elif kind in ("drawing", "pict", "object") or tag == _ALT:
                for box in _text_boxes(child, self.w):
                    extra.extend(self.blocks(box, depth + 1))

    # content controls ------------------------------------------------------------------

    def inline_sdt(
        self, sdt: etree._Element, out: list[Inline], extra: list[Block], depth: int
    ) -> None:
        pr = sdt.find(self.w + "sdtPr")
        content = sdt.find(self.w + "sdtContent")
        if content is None:
            return
        is_checkbox = pr is not None and pr.find(_W14_CHECKBOX) is not None
        if not is_checkbox and content.find(f".//{self.w}sdt") is not None:
            self.inline(
                content, out, extra, depth + 1
            )  # nested controls: read each one
            return
        self._emit(out, self._control(pr, content, depth, extra))

    def _control(
        self,
        pr: etree._Element | None,
        content: etree._Element,
        depth: int,
        extra: list[Block] | None = None,
    ) -> Control:
        w = self.w
        tag = alias = None
        checked: bool | None = None
        if pr is not None:
            tag = self._attr(pr.find(w + "tag"))
            alias = self._attr(pr.find(w + "alias"))
            box = pr.find(_W14_CHECKBOX)
            if box is not None:
                state = box.find(_W14_CHECKED)
                checked = state is not None and state.get(_W14_VAL, "1").lower() in (
                    "1",
                    "true",
                    "on",
                )
        value: str | None = None
        if checked is None and not _is_placeholder(pr, w):
            value = self._text_of(content, depth, extra)
        control = Control(key=tag, label=alias, value=value, checked=checked)
        self.controls.append(control)
        return control

    def _text_of(
        self, content: etree._Element, depth: int, extra: list[Block] | None
    ) -> str:
        saved, self.fields = self.fields, []
        parts: list[Inline] = []
        sink = extra if extra is not None else []
        # Block-level content holds paragraphs; inline content holds runs.
        if (
            content.find(self.w + "p") is not None
            or content.find(self.w + "tbl") is not None
        ):
            lines = []
            for block in self.blocks(content, depth + 1):
                if isinstance(block, Para):
                    lines.append(
                        "".join(
                            i if isinstance(i, str) else i.render()
                            for i in block.inlines
                        )
                    )
            self.fields = saved
            return "\n".join(lines)
        self.inline(content, parts, sink, depth + 1)
        self._flush_fields(parts)
        self.fields = saved
        return "".join(i if isinstance(i, str) else i.render() for i in parts)

    # legacy form fields ----------------------------------------------------------------

    def field_char(self, el: etree._Element, out: list[Inline]) -> None:
        kind = self._attr(el, "fldCharType")
        if kind == "begin":
            self.fields.append(_Field(ff=el.find(self.w + "ffData")))
        elif kind == "separate" and self.fields:
            self.fields[-1].in_result = True
        elif kind == "end" and self.fields:
            done = self.fields.pop()
            for item in self._finish_field(done):
                self._emit(out, item)

    def _flush_fields(self, out: list[Inline]) -> None:
        """Close fields left open at a paragraph's end (a missing end/separate mark)."""
        while self.fields:
            done = self.fields.pop()
            for item in self._finish_field(done):
                self._emit(out, item)

    def _finish_field(self, done: _Field) -> list[Inline]:
        words = "".join(done.instr).split()
        kind = words[0].upper() if words else ""
        w = self.w
        ff = done.ff
        name = self._attr(ff.find(w + "name")) if ff is not None else None
        if kind == "FORMCHECKBOX":
            box = ff.find(w + "checkBox") if ff is not None else None
            checked = False
            if box is not None:
                state = box.find(w + "checked")
                if state is None:
                    state = box.find(w + "default")
                    checked = state is not None and self._attr(state) in (
                        "1",
                        "true",
                        "on",
                    )
                else:
                    checked = self._attr(state) in (None, "1", "true", "on")
            control = Control(key=name, value=None, checked=checked)
        elif kind == "FORMTEXT":
            text = "".join(i if isinstance(i, str) else i.render() for i in done.result)
            control = Control(key=name, value=text if text.strip() else None)
        elif kind == "FORMDROPDOWN":
            value = None
            dd = ff.find(w + "ddList") if ff is not None else None
            if dd is not None:
                entries = [self._attr(e) or "" for e in dd.findall(w + "listEntry")]
                try:
                    index = int(self._attr(dd.find(w + "result")) or 0)
                except ValueError:
                    index = 0
                if 0 <= index < len(entries):
                    value = entries[index]
            control = Control(key=name, value=value)
        else:
            return done.result  # HYPERLINK, PAGE, MERGEFIELD…: their shown text is text
        self.controls.append(control)
        return [control]


def _choose(alt: etree._Element) -> etree._Element | None:
    """Read one branch of mc:AlternateContent (the first Choice), never both."""
    choice = alt.find(_CHOICE)
    return choice if choice is not None else alt.find(_FALLBACK)


def _text_boxes(el: etree._Element, w: str) -> list[etree._Element]:
    """Outermost w:txbxContent under ``el``, taking one branch of alternate content."""
    found: list[etree._Element] = []
    stack = [el]
    target = w + "txbxContent"
    while stack:
        node = stack.pop()
        for child in node:
            if not isinstance(child.tag, str):
                continue
            if child.tag == target:
                found.append(child)
            elif child.tag == _ALT:
                chosen = _choose(child)
                if chosen is not None:
                    stack.append(chosen)
            elif child.tag != _FALLBACK:
                stack.append(child)
        if len(found) > 50:
            break
    return found


def _is_placeholder(pr: etree._Element | None, w: str) -> bool:
    if pr is None:
        return False
    flag = pr.find(w + "showingPlcHdr")
    return flag is not None and flag.get(w + "val", "1").lower() not in (
        "0",
        "false",
        "off",
    )


def _looks_keyed(tag: str) -> bool:
    return tag.startswith(
        ("institution", "participant", "workshop", "consent", "remarks")
    )
