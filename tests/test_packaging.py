"""A package that installs (issue 23): the notebooks and templates are package data, so a wheel
built from the checkout, installed outside it, runs ``crmlab report`` and ``crmlab notebooks``."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from crmlab.simulate.store import write_sample

ROOT = Path(__file__).resolve().parent.parent


def _source_copy(dst: Path) -> Path:
    """The files git knows (tracked or new, not ignored) that make the package: no ``build/``
    left over from an earlier build can slip a removed module into the wheel."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "crmlab", "pyproject.toml", "README.md"],
                         cwd=ROOT, capture_output=True, text=True, check=True).stdout.splitlines()
    for rel in out:
        src = ROOT / rel
        if src.is_file():
            (dst / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst / rel)
    return dst


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The wheel of this checkout, installed with ``pip install --target`` into a new folder."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs the git checkout")
    tmp = tmp_path_factory.mktemp("wheel")
    src = _source_copy(tmp / "src")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), str(src)],
                   check=True, capture_output=True)
    wheels = list((tmp / "dist").glob("crmlab-*.whl"))
    assert len(wheels) == 1
    target = tmp / "site"
    subprocess.run([*pip, "install", "--no-deps", "--target", str(target), str(wheels[0])], check=True,
                   capture_output=True)
    return target


def _run(args: list[str], site: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_the_wheel_carries_notebooks_and_templates(installed):
    pkg = installed / "crmlab" / "report"
    assert sorted(p.name for p in (pkg / "notebooks").glob("0*.ipynb"))[:2] == ["00_quickstart.ipynb",
                                                                                  "01_store_overview.ipynb"]
    assert (pkg / "notebooks" / "weekly.yaml").is_file()
    assert (pkg / "templates" / "crmlab" / "index.html.j2").is_file()


def test_installed_package_runs_a_report_from_an_empty_folder(installed, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    r = _run(["-c", "import crmlab; print(crmlab.__file__)"], installed, empty)
    assert r.returncode == 0, r.stderr
    assert Path(r.stdout.strip()).resolve().is_relative_to(installed.resolve())  # not the checkout
    write_sample(str(tmp_path / "shop"), n_customers=300, seed=2)
    out = tmp_path / "out"
    r = _run(["-m", "crmlab.cli.main", "report", "01", "--orders", str(tmp_path / "shop" / "orders.csv"),
              "--out", str(out)], installed, empty)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (out / "01_store_overview.html").is_file() and (out / "index.html").is_file()
    r = _run(["-m", "crmlab.cli.main", "notebooks", str(tmp_path / "lab")], installed, empty)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "lab" / "01_store_overview.ipynb").is_file() and (tmp_path / "lab" / "weekly.yaml").is_file()
    assert list(empty.iterdir()) == []  # nothing written where it ran
