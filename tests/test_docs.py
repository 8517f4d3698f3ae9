"""The documentation: the MkDocs site builds in strict mode with no warning, the API reference
covers every package, and the README stays a short front door that links into the site.

``make test`` runs this, so a broken link, a page missing from the site or a docstring that
mkdocstrings cannot read fails the suite (``make docs`` builds the same site into ``site/``).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README = ROOT / "README.md"


def _mkdocs_config() -> dict:
    """mkdocs.yml as data (it uses no custom YAML tags)."""
    return yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))


def _nav_pages(nav) -> list[str]:
    """Every page path named in the ``nav`` tree."""
    if isinstance(nav, str):
        return [nav]
    if isinstance(nav, list):
        return [p for item in nav for p in _nav_pages(item)]
    if isinstance(nav, dict):
        return [p for value in nav.values() for p in _nav_pages(value)]
    return []


def test_mkdocs_builds_strict_without_warnings(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs extra: pip install -e '.[docs]' (make installs it)")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "NO_COLOR": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    log = done.stdout + done.stderr
    warnings = [line for line in log.splitlines() if re.match(r"\s*(WARNING|ERROR)\b", line)]
    assert done.returncode == 0, log[-4000:]
    assert warnings == [], "\n".join(warnings)
    site = tmp_path / "site"
    assert (site / "index.html").is_file()
    assert (site / "report-phone.png").is_file()
    api = (site / "reference" / "api" / "index.html").read_text(encoding="utf-8")
    assert 'id="crmlab.api.fit_clv"' in api  # the reference is rendered from the docstrings


def test_every_nav_page_exists_and_every_page_is_in_the_nav():
    nav = set(_nav_pages(_mkdocs_config()["nav"]))
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert nav - pages == set(), "in the nav, no such page"
    assert pages - nav == set(), "a page the nav does not show"


def test_the_api_reference_covers_every_package():
    """Each crmlab package (a folder with __init__.py) and top-level module has a ``::: name`` page."""
    text = "\n".join(p.read_text(encoding="utf-8") for p in (DOCS / "reference").glob("*.md"))
    documented = set(re.findall(r"^::: (crmlab[\w.]*)\s*$", text, flags=re.M))
    package = ROOT / "crmlab"
    wanted = {f"crmlab.{p.parent.name}" for p in package.glob("*/__init__.py")}
    wanted |= {f"crmlab.{p.stem}" for p in package.glob("*.py") if not p.stem.startswith("_")}
    wanted |= {"crmlab"}
    assert wanted - documented == set(), "no reference page"
    for name in documented:  # each target exists (a module renamed by a split shows here first)
        rel = Path(*name.split("."))
        assert (ROOT / rel / "__init__.py").is_file() or (ROOT / rel).with_suffix(".py").is_file(), name


def test_the_method_notes_and_the_guide_cover_the_topics():
    text = "\n".join(p.read_text(encoding="utf-8") for p in DOCS.rglob("*.md"))
    for topic in ("Censoring", "Kaplan", "TOST", "BG/NBD", "Pareto/NBD", "Gamma-Gamma", "CUPED", "Holm",
                  "sample ratio mismatch", "no-verdict", "confidence sequence", "--csv-raw",
                  "Content-Security-Policy", ".DIR.lock", "weekly.yaml", "crmlab notebooks DIR",
                  "--memory-limit", "--clean-out", "--sheet", "Reversals", "make bench"):
        assert topic in text, topic


def _module_file(dotted: str) -> Path | None:
    """The source file of module ``dotted`` in the checkout, or None."""
    rel = ROOT.joinpath(*dotted.split("."))
    for path in (rel / "__init__.py", rel.with_suffix(".py")):
        if path.is_file():
            return path
    return None


def _defines(module: Path, name: str) -> bool:
    """Whether ``module``'s source defines, assigns, imports or lazily exports (``"name": ...``) ``name``."""
    pattern = (rf"^(?:def|class) {name}\b|^{name}\b.*=|\b{name}\b.*import|import.*\b{name}\b"
               rf"|['\"]{name}['\"]\s*:")
    return re.search(pattern, module.read_text(encoding="utf-8"), flags=re.M) is not None


def test_names_in_the_guide_and_method_notes_exist():
    """``crmlab.x.y`` and ``crmlab.x.y.name`` in the prose name a module, and a name it defines or imports."""
    pages = [*(DOCS / "guide").glob("*.md"), *(DOCS / "methods").glob("*.md"), DOCS / "index.md", README]
    missing = []
    for page in pages:
        for dotted in set(re.findall(r"`(crmlab(?:\.\w+)+)", page.read_text(encoding="utf-8"))):
            parts = dotted.split(".")
            cut = next((i for i in range(len(parts), 0, -1) if _module_file(".".join(parts[:i]))), 0)
            rest = parts[cut:]
            if cut == 0 or len(rest) > 1:
                missing.append(f"{page.name}: {dotted}")
            elif rest and not _defines(_module_file(".".join(parts[:cut])), rest[0]):
                missing.append(f"{page.name}: {dotted}")
    assert missing == [], missing


def test_readme_is_a_short_front_door():
    text = README.read_text(encoding="utf-8")
    lines = text.splitlines()
    assert len(lines) <= 150, len(lines)
    assert "make test" in text and "make report" in text  # CI reads the test command here
    assert "docs/report-phone.png" in text and (ROOT / "docs" / "report-phone.png").is_file()
    links = re.findall(r"\]\((docs/[^)#\s]+)", text)
    assert any(link.startswith("docs/guide/") for link in links)
    assert any(link.startswith("docs/methods/") for link in links)
    for link in links:
        assert (ROOT / link).exists(), link
