"""Dependencies: environment.yml in step with pyproject.toml; every lifetimes call crmlab uses works."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _name(req: str) -> str:
    return re.split(r"[<>=!~ \[]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _spec(req: str) -> str:
    return req.strip().lower().replace(" ", "")


def test_environment_yml_lists_the_same_packages_as_pyproject():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    extras = py["optional-dependencies"]
    want = {_spec(r.split(";")[0]) for r in py["dependencies"] + extras["test"] + extras["spark"] + extras["docs"]}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    have = set()
    for d in env["dependencies"]:
        if isinstance(d, dict):
            have |= {_spec(x) for x in d["pip"] if not x.startswith("-")}
        elif _name(d) not in ("python", "pip"):
            have.add(_spec(d))
    assert have == want, f"only in pyproject: {sorted(want - have)}; only in environment.yml: {sorted(have - want)}"


def test_pandas_is_pinned_below_3_for_lifetimes():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pandas = next(r for r in py["dependencies"] if _name(r) == "pandas")
    assert "<3" in pandas.replace(" ", "")
