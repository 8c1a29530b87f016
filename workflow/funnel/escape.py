"""The one escaping step between the data or the config and an HTML page or Markdown cell.

Group labels, column names, dataset names and file paths come from the user's
table and config, and the report writes them into Markdown cells (rendered by
nbconvert, which does not sanitize: raw HTML passes through) and HTML pages.
Everything the report shows goes through one of two functions here:

:func:`html_text`  a value placed in HTML (text or a quoted attribute).
:func:`markdown`   a whole Markdown text for a notebook cell, values included: raw
                   HTML of any kind is shown as text (``<``, ``>``, ``&`` become
                   entities), a code span becomes ``<code>`` with its content
                   escaped, and a link whose target is not http(s), mailto, an
                   anchor or a relative path (e.g. ``javascript:``) is shown as text.
:func:`md_cell`    a value placed in a Markdown table's cell: its pipes escaped.

Markdown emphasis inside a value (``*``, ``_``) is left to Markdown: it can
change how a label looks, never run anything.
"""

from __future__ import annotations

import html
import re
from typing import Any

# A code span: a run of backticks, its content, the same run (CommonMark's rule).
CODE_SPAN = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)
# A link or image destination: "](" then an optional "<", then a URL scheme.
LINK_TARGET = re.compile(r"\]\(\s*<?\s*([A-Za-z][A-Za-z0-9+.\-]*):")
SAFE_SCHEMES = {"http", "https", "mailto"}
# A link reference definition's "]:" (``[x]: javascript:...`` on a line of its own).
REFERENCE = re.compile(r"\]:")
PUNCTUATION = set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~")


def html_text(value: Any) -> str:
    """``value`` as text for HTML: ``& < > " '`` become entities (safe in text and quoted attributes)."""
    return html.escape(str(value), quote=True)


def _code(content: str) -> str:
    """A code span's content as inline ``<code>``: HTML-escaped, Markdown punctuation backslashed."""
    out = []
    for char in content:
        if char in "&<>\"'":
            out.append(html.escape(char, quote=True))
        elif char in PUNCTUATION:
            out.append("\\" + char)
        else:
            out.append(char)
    return "<code>" + "".join(out) + "</code>"


def _prose(text: str) -> str:
    """Markdown outside code spans: no raw HTML, no link to an unsafe scheme."""
    text = html.escape(text, quote=False)

    def link(match: re.Match[str]) -> str:
        if match.group(1).lower() in SAFE_SCHEMES:
            return match.group(0)
        return "]\\(" + match.group(0)[2:]

    text = LINK_TARGET.sub(link, text)
    return REFERENCE.sub("]\\:", text)


def markdown(text: str) -> str:
    """Markdown ``text`` (with values from the data in it) made safe to render: see the module's doc."""
    parts: list[str] = []
    position = 0
    for match in CODE_SPAN.finditer(text):
        parts.append(_prose(text[position : match.start()]))
        content = match.group(2)
        if content.startswith(" ") and content.endswith(" ") and content.strip():
            content = content[1:-1]  # CommonMark strips one space each side
        parts.append(_code(content))
        position = match.end()
    parts.append(_prose(text[position:]))
    return "".join(parts)


def md_cell(text: object) -> str:
    """A Markdown table cell: its pipes escaped (a formula's scale, 'sigma_1|herd', would split the cell)."""
    return str(text).replace("|", "\\|")
