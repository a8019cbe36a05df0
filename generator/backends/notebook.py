"""Notebook backend: the demo notebook (templates/host/cfgen_demo.py.j2, percent-format
cells) rendered as an .ipynb. `python -m generator.flows.notebook OUT` executes it."""

from __future__ import annotations

import re
from pathlib import Path

from ..core import paths

REPO_ROOT = paths.REPO_ROOT
TEMPLATES = paths.TEMPLATES / "host"
NOTEBOOK = "cfgen_demo.ipynb"


def notebook_from_percent(text: str):
    """'# %%' / '# %% [markdown]' cells -> an nbformat v4 notebook."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for chunk in re.split(r"^# %%", text, flags=re.M)[1:]:
        header, _, body = chunk.partition("\n")
        body = body.strip("\n")
        if "[markdown]" in header:
            md = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in body.splitlines())
            nb.cells.append(nbformat.v4.new_markdown_cell(md))
        else:
            nb.cells.append(nbformat.v4.new_code_cell(body))
    return nb


def jinja_env():
    """The templates/host/ environment, with generator/core/escape.py's filters (`py`, `md`,
    `md_code`, `line`, `shell`, ...): every user string is rendered through one of them."""
    import jinja2

    from ..core import escape

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, autoescape=False)
    env.filters.update(escape.filters())
    return env


def render_notebook_text(meta: dict, *, package: bool) -> str:
    """The demo as a percent-format Python script (what the notebook's cells are made from)."""
    return jinja_env().get_template("cfgen_demo.py.j2").render(
        meta=meta, meta_dir="." if package else "..", driver_path=str(REPO_ROOT / "host"))


def render_notebook(dest, meta: dict, *, package: bool) -> Path:
    """Write the notebook. package=True: it sits next to cfgen_meta.json and cfgen_driver/
    (board package); False: it sits in OUT/notebook/ and imports the driver from the repo."""
    import nbformat

    nb = notebook_from_percent(render_notebook_text(meta, package=package))
    nbformat.validate(nb)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(dest))
    return dest
