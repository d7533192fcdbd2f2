"""Slides of the executed lessons that work offline (tools/slides.py, `make slides`), without npm or a network:
the libraries the slides load are faked here; `make slides` fetches the real ones once."""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from tools import slides

WIDGET = "application/vnd.jupyter.widget-view+json"


def _lesson():
    panel = new_output("execute_result", data={WIDGET: {"model_id": "x", "version_major": 2, "version_minor": 0},
                                               "text/plain": "[The playground ...]", "text/html": "<p>panel</p>"},
                       execution_count=2)
    bar = new_output("display_data", data={WIDGET: {"model_id": "y", "version_major": 2, "version_minor": 0}})
    notebook = new_notebook(cells=[
        new_markdown_cell("# 00 · Welcome\n\nIntro."),
        new_code_cell("from utils import notebook"),
        new_markdown_cell("## 1. Your set-up\n\nText."),
        new_code_cell("panel", outputs=[panel, bar]),
        new_markdown_cell("### Topics"),
        new_markdown_cell("Prose, no heading; `## not a heading` here, and $W + \\frac{\\alpha}{r} BA$."),
        new_markdown_cell("#### A small heading"),
        new_markdown_cell("## 2. The data"),
    ])
    notebook.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    return notebook


def test_sections_are_slides_and_widgets_keep_their_saved_form():
    notebook = _lesson()
    assert slides.mark_sections(notebook) == 3
    kinds = [cell.metadata["slideshow"]["slide_type"] for cell in notebook.cells]
    assert kinds == ["slide", "-", "slide", "-", "subslide", "-", "-", "slide"]
    (panel,) = notebook.cells[3].outputs  # the bar, a widget alone, is dropped
    assert WIDGET not in panel["data"] and panel["data"]["text/html"] == "<p>panel</p>"
    assert "widgets" not in notebook.metadata


def test_slides_load_nothing_from_the_network(tmp_path, monkeypatch):
    vendor = tmp_path / "vendor-cache"
    (vendor / "reveal.js" / "dist").mkdir(parents=True)
    (vendor / "reveal.js" / "dist" / "reveal.js").write_text("// reveal")
    monkeypatch.setattr(slides, "vendor", lambda: vendor)
    executed = tmp_path / "results" / "smoke" / "notebooks"
    executed.mkdir(parents=True)
    nbformat.write(_lesson(), executed / "00_welcome.ipynb")
    out = slides.build_slides(tmp_path / "results" / "smoke")
    page = (out / "00_welcome.slides.html").read_text(encoding="utf-8")
    assert (out / "vendor" / "reveal.js" / "dist" / "reveal.js").is_file()
    for url in slides.URLS.values():
        if not url.startswith("data:"):
            assert url.replace("&", "&amp;") in page or url in page, url
    scripts_and_styles = [line for line in page.splitlines() if "<script src=" in line or "<link rel=\"stylesheet\"" in line]
    assert scripts_and_styles and not [line for line in scripts_and_styles if "http" in line], scripts_and_styles
    assert "unpkg.com" not in page and "cdnjs" not in page
    assert page.count('<section') >= 3  # one per section at least


def test_every_vendored_file_is_one_the_template_loads():
    """The URLs point inside the packages :func:`tools.slides.vendor` keeps."""
    kept = {name: files for name, (_, files) in slides.PACKAGES.items()}
    assert slides.URLS["reveal_url_prefix"] == "vendor/reveal.js" and "dist/" in kept["reveal.js"]
    assert slides.URLS["require_js_url"] == "vendor/requirejs/require.js" and "require.js" in kept["requirejs"]
    assert slides.URLS["jquery_url"] == "vendor/jquery/dist/jquery.min.js" and "dist/jquery.min.js" in kept["jquery"]
    assert slides.URLS["mathjax_url"].startswith("vendor/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe")
    assert {"MathJax.js", "config/TeX-AMS_CHTML-full.js", "config/Safe.js"} <= set(kept["mathjax"])
