"""``crmlab notebooks DIR``: the report notebooks (and weekly.yaml) copied for editing in JupyterLab."""
from __future__ import annotations

import json

from crmlab.cli.main import main
from crmlab.report.paths import NOTEBOOK_DIR


def test_copies_every_notebook_and_the_schedule(tmp_path, capsys):
    d = tmp_path / "lab"
    assert main(["notebooks", str(d)]) == 0
    shipped = sorted(p.name for p in NOTEBOOK_DIR.iterdir() if p.suffix in (".ipynb", ".yaml"))
    assert sorted(p.name for p in d.iterdir() if not p.name.startswith(".")) == shipped
    assert "weekly.yaml" in shipped and "00_quickstart.ipynb" in shipped
    for name in shipped:
        assert (d / name).read_bytes() == (NOTEBOOK_DIR / name).read_bytes()
    json.loads((d / "01_store_overview.ipynb").read_text(encoding="utf-8"))
    assert "jupyter lab" in capsys.readouterr().err
    assert main(["notebooks", str(d)]) == 0  # its own, unedited copies: replaced


def test_never_overwrites_what_it_did_not_write(tmp_path, capsys):
    d = tmp_path / "lab"
    d.mkdir()
    mine = d / "04_clv.ipynb"
    mine.write_text("my own notebook", encoding="utf-8")
    assert main(["notebooks", str(d)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("crmlab: error: ") and "04_clv.ipynb" in err[0]
    assert mine.read_text(encoding="utf-8") == "my own notebook"
    assert sorted(p.name for p in d.iterdir()) == ["04_clv.ipynb"]  # nothing copied


def test_refuses_an_edited_copy(tmp_path, capsys):
    d = tmp_path / "lab"
    assert main(["notebooks", str(d)]) == 0
    with open(d / "weekly.yaml", "a", encoding="utf-8") as fh:
        fh.write("# my schedule\n")
    capsys.readouterr()
    assert main(["notebooks", str(d)]) == 2
    assert "weekly.yaml" in capsys.readouterr().err
    assert (d / "weekly.yaml").read_text(encoding="utf-8").endswith("# my schedule\n")


def test_a_file_as_dir_is_one_line(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x", encoding="utf-8")
    assert main(["notebooks", str(f)]) == 2
    assert capsys.readouterr().err.strip().startswith("crmlab: error: ")
