"""Where the report layer's files are: the notebooks and templates shipped in the package."""
from __future__ import annotations

from pathlib import Path

__all__ = ["NOTEBOOK_DIR", "TEMPLATE_DIR", "PACKAGE_HOME", "KERNEL"]

#: the report notebooks (package data: ``crmlab/report/notebooks``)
NOTEBOOK_DIR = Path(__file__).resolve().parent / "notebooks"
#: the HTML templates (package data: ``crmlab/report/templates``)
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
#: the folder holding the ``crmlab`` package: the checkout, or site-packages when installed
PACKAGE_HOME = Path(__file__).resolve().parents[2]
#: the Jupyter kernel the notebooks run on
KERNEL = "crmlab"
