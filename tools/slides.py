"""Offline reveal.js slides of a finished course run's executed lessons (``make slides``)::

    python -m tools.slides results/tiny     # -> results/tiny/slides/<lesson>.slides.html, and vendor/

A slide per ``##`` section, a sub-slide per ``###``; reveal.js and the libraries the slides load are fetched
once with ``npm pack`` into the virtual environment and copied beside the slides, so the folder works offline.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import nbformat

from utils.config import shown_path

#: npm package -> (version, the files taken from it: path prefixes inside the package). reveal.js 4 is what
#: nbconvert's reveal template is written for; MathJax 2 what its math configuration calls.
PACKAGES = {
    "reveal.js": ("4.6.1", ("dist/", "plugin/notes/", "LICENSE")),
    "requirejs": ("2.3.7", ("require.js", "LICENSE")),
    "jquery": ("3.7.1", ("dist/jquery.min.js", "LICENSE.txt")),
    "mathjax": ("2.7.9", ("MathJax.js", "config/TeX-AMS_CHTML-full.js", "config/Safe.js", "extensions/",
                          "jax/input/TeX/", "jax/element/", "jax/output/CommonHTML/",
                          "fonts/HTML-CSS/TeX/woff/", "LICENSE")),
}
#: The URLs the slides load them from, relative to the slides' folder.
URLS = {
    "reveal_url_prefix": "vendor/reveal.js",
    "require_js_url": "vendor/requirejs/require.js",
    "jquery_url": "vendor/jquery/dist/jquery.min.js",
    "mathjax_url": "vendor/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe",
    # The template imports mermaid (diagrams, which no lesson has) as a module: an empty one, from nowhere.
    "mermaid_js_url": "data:text/javascript,export default {initialize() {}}",
}
_WIDGET = "application/vnd.jupyter.widget-view+json"


def mark_sections(notebook: nbformat.NotebookNode) -> int:
    """Mark slides in place (the first cell and each ``##`` cell a slide, ``###`` a sub-slide; widgets keep
    their text or HTML form, as a saved widget needs a kernel or a CDN); the number of slides."""
    slides = 0
    for index, cell in enumerate(notebook.cells):
        source = cell.source.lstrip() if cell.cell_type == "markdown" else ""
        if index == 0 or re.match(r"##(?!#)\s", source):
            kind, slides = "slide", slides + 1
        else:
            kind = "subslide" if re.match(r"###(?!#)\s", source) else "-"
        cell.metadata["slideshow"] = {"slide_type": kind}
        if "outputs" in cell:
            cell.outputs = [output for output in cell.outputs
                            if set(output.get("data", {_WIDGET: 0})) != {_WIDGET}]
            for output in cell.outputs:
                output.get("data", {}).pop(_WIDGET, None)
    notebook.metadata.pop("widgets", None)
    return slides


def vendor(folder: Path = Path(sys.prefix) / "share" / "flan-course" / "slides-vendor") -> Path:
    """The packages of :data:`PACKAGES` in ``folder/<package>/`` (by default inside the virtual environment),
    fetched with ``npm pack`` on first use."""
    missing = [name for name, (version, _) in PACKAGES.items()
               if not (folder / name / ".version").is_file()
               or (folder / name / ".version").read_text().strip() != version]
    if not missing:
        return folder
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit("make slides needs npm (https://nodejs.org) once, to fetch the libraries of offline "
                         "slides; or present the lessons live in JupyterLab "
                         "(docs/what-a-course-run-writes.md#slides).")
    with tempfile.TemporaryDirectory() as tmp:
        for name in missing:
            version, keep = PACKAGES[name]
            run = subprocess.run([npm, "pack", f"{name}@{version}", "--pack-destination", tmp, "--silent"],
                                 capture_output=True, text=True)
            if run.returncode != 0:
                raise SystemExit(f"npm pack {name}@{version} failed (it needs the npm registry once):\n"
                                 f"{run.stderr.strip()[-2000:]}")
            target = folder / name
            shutil.rmtree(target, ignore_errors=True)
            with tarfile.open(Path(tmp) / run.stdout.strip().splitlines()[-1]) as archive:
                members = [m for m in archive.getmembers() if m.isfile()
                           and m.name.removeprefix("package/").startswith(keep)]
                for member in members:
                    member.name = member.name.removeprefix("package/")
                safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}  # Python 3.10.12+
                archive.extractall(target, members=members, **safe)
            (target / ".version").write_text(version + "\n")
    return folder


def build_slides(run_dir: str | Path) -> Path:
    """Slides of every executed lesson of ``run_dir/notebooks/`` in ``run_dir/slides/``, with the libraries
    they load beside them (``vendor/``); returns the slides' folder."""
    from nbconvert import SlidesExporter

    run_dir = Path(run_dir)
    notebooks = sorted((run_dir / "notebooks").glob("*.ipynb"))
    if not notebooks:
        raise SystemExit(f"No executed notebooks in {shown_path(run_dir / 'notebooks')}: run "
                         f"`make course PROFILE={run_dir.name}` first.")
    out = run_dir / "slides"
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(vendor(), out / "vendor", dirs_exist_ok=True, ignore=shutil.ignore_patterns(".version"))
    # The white theme: its fonts are in reveal.js.
    exporter = SlidesExporter(reveal_scroll=True, reveal_theme="white", **URLS)
    for path in notebooks:
        notebook = nbformat.read(path, as_version=4)
        count = mark_sections(notebook)
        page, _ = exporter.from_notebook_node(notebook, resources={"metadata": {"name": path.stem}})
        (out / f"{path.stem}.slides.html").write_text(page, encoding="utf-8")
        print(f"{path.stem}: {count} slides")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path, help="a course run's folder, results/<profile>")
    args = parser.parse_args(argv)
    print(f"Slides: {shown_path(build_slides(args.run_dir))}/ (open one in a browser; no network needed: "
          "arrow keys, Esc for an overview)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
