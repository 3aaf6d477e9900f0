"""Sphinx configuration: ``make docs`` (``python -m sphinx -W -b html docs docs/_build/html``).

autodoc imports the package, so Django is set up here with a minimal settings
module (``docs/_settings.py``). Nothing is fetched from the network: no intersphinx.
"""

import os
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

# Not setdefault: a caller's DJANGO_SETTINGS_MODULE (pytest's, say) must not leak in.
os.environ["DJANGO_SETTINGS_MODULE"] = "docs._settings"

import django  # noqa: E402

django.setup()

_init = ROOT / "django_websocket" / "__init__.py"
_match = re.search(r'^__version__\s*=\s*["\']([^"\']+)["\']', _init.read_text(), re.MULTILINE)

project = "django-websocket"
author = "django-websocket contributors"
copyright = "django-websocket contributors"
release = _match.group(1) if _match else "unknown"
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]

templates_path: list[str] = []
exclude_patterns = ["_build", "examples", "Thumbs.db", ".DS_Store"]
root_doc = "index"

# -- autodoc / napoleon (Google-style docstrings: Args, Returns, Raises) -------------
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False

# -- HTML --------------------------------------------------------------------------
html_theme = "furo"
html_title = f"django-websocket {release}"
html_static_path: list[str] = []
pygments_style = "friendly"
pygments_dark_style = "monokai"


# -- docstring shapes napoleon does not read -----------------------------------------
# Two shapes in the package's docstrings are not Google style, and docutils warns on
# them (the build runs with -W). Rather than leave them out, rewrite them as they are
# read; the package's files are not touched.
#
# 1. A prose header ending in ":" over an indented "name: text" block (WebSocketView's
#    "Class attributes (...):"): becomes the header, a blank line and a bullet list.
# 2. A line of prose inside an "Args:" section (WebSocketClient's "Other arguments are
#    ..."): moved after the section, as a paragraph.

_SECTIONS = {
    "args",
    "arguments",
    "attributes",
    "example",
    "examples",
    "keyword args",
    "keyword arguments",
    "methods",
    "note",
    "notes",
    "other parameters",
    "parameters",
    "raises",
    "returns",
    "return",
    "see also",
    "todo",
    "warning",
    "warnings",
    "warns",
    "yield",
    "yields",
}
_ITEM = re.compile(r"^(?P<names>[\w*][\w*, ]*?):\s+(?P<text>.*)$")
_PARAM = re.compile(r"^\*{0,2}\w+(\s*\([^)]*\))?:(\s|$)")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _bullets_for_prose_headers(lines: list[str]) -> None:
    i = 0
    while i < len(lines) - 1:
        line, nxt = lines[i], lines[i + 1]
        header = line.strip()
        if (
            header.endswith(":")
            and not header.endswith("::")
            and header[:-1].strip().lower() not in _SECTIONS
            and nxt.strip()
            and _indent(nxt) > _indent(line)
            and _ITEM.match(nxt.strip())
        ):
            base, item_indent = _indent(line), _indent(nxt)
            raw: list[str] = []
            j = i + 1
            while j < len(lines) and lines[j].strip() and _indent(lines[j]) >= item_indent:
                text = lines[j].strip()
                # A new item starts at the item indent, unless the previous line was a
                # list of names wrapped after a comma ("a, b,\n c: text").
                if _indent(lines[j]) == item_indent and not (raw and raw[-1].endswith(",")):
                    raw.append(text)
                else:
                    raw[-1] += " " + text
                j += 1
            items = []
            for text in raw:
                match = _ITEM.match(text)
                if match:
                    names = ", ".join(f"``{n.strip()}``" for n in match["names"].split(","))
                    items.append(f"{names}: {match['text']}")
                else:
                    items.append(text)
            pad = " " * base
            lines[i + 1 : j] = ["", *(f"{pad}* {item}" for item in items), ""]
            i += len(items) + 2
        i += 1


def _lift_prose_out_of_args(lines: list[str]) -> None:
    for i, line in enumerate(lines):
        if line.strip() not in ("Args:", "Arguments:"):
            continue
        base = _indent(line)
        j, item_indent, prose = i + 1, None, []
        while j < len(lines) and (not lines[j].strip() or _indent(lines[j]) > base):
            current = lines[j]
            if current.strip() and item_indent is None:
                item_indent = _indent(current)
            at_item = current.strip() and _indent(current) == item_indent
            if at_item and not _PARAM.match(current.strip()):
                prose.append(" " * base + current.strip())
                del lines[j]
                continue
            j += 1
        if prose:
            lines[j:j] = ["", *prose, ""]
        return


def _fix_docstring(app, what, name, obj, options, lines):  # noqa: ARG001 (Sphinx's signature)
    _bullets_for_prose_headers(lines)
    _lift_prose_out_of_args(lines)


def setup(app):
    # Before napoleon (priority 500), which reads the sections these fixes repair.
    app.connect("autodoc-process-docstring", _fix_docstring, priority=100)
