"""The report runner: validate inputs, run notebooks with papermill, export HTML, index runs.

A run is built in a temporary directory next to the target and moved into place only
when complete, so ``DIR`` is never half-written. With ``--out reports/{date}`` the run
date is expanded; after a successful run ``reports/latest`` is pointed at it (a failed run
leaves ``latest`` where it was) and ``reports/index.html`` lists past runs side by side.

Exit codes (CLI): 0 all reports ran; 1 a notebook failed (its HTML shows the error);
2 bad input or arguments (one line on stderr, nothing run).
"""
from __future__ import annotations

import datetime as _dt
import html
import json
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

from crmlab import __version__
from crmlab.io import CrmlabInputError, load_orders, load_sends, parse_columns
from crmlab.privacy import find_pii

__all__ = ["NOTEBOOK_DIR", "ReportResult", "RunResult", "list_notebooks", "run_reports", "to_html",
           "resolve_type"]

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"
KERNEL = "crmlab"


@dataclass
class ReportResult:
    name: str
    ok: bool
    seconds: float
    error: str | None = None
    headlines: dict = field(default_factory=dict)


@dataclass
class RunResult:
    out: Path
    reports: list[ReportResult]

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.reports)


def resolve_type(value: str):
    """Type a ``-p name=value`` string as papermill's CLI does (bool, None, int, float, str)."""
    if value in ("True", "true"):
        return True
    if value in ("False", "false"):
        return False
    if value in ("None", "none", "null"):
        return None
    for cast in (int, float):
        try:
            return cast(value)
        except ValueError:
            pass
    return value


def list_notebooks(names: Sequence[str] | None = None, directory: Path = NOTEBOOK_DIR) -> list[Path]:
    """The numbered notebooks, or those named (``02``, ``02_retention_repurchase`` or a path)."""
    all_nb = sorted(p for p in Path(directory).glob("[0-9][0-9]_*.ipynb"))
    if not names:
        return all_nb
    out = []
    for n in names:
        p = Path(n)
        if p.suffix == ".ipynb" and p.exists():
            out.append(p.resolve())
            continue
        hits = [q for q in all_nb if q.stem == n or q.stem.startswith(n)]
        if not hits:
            raise CrmlabInputError(f"no notebook named {n!r} (have: {', '.join(q.stem for q in all_nb)})")
        out.extend(hits)
    return out


def to_html(nb_path: Path, html_path: Path) -> None:
    """Export an executed notebook to self-contained HTML with the code hidden."""
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(nb_path), as_version=4)
    exp = HTMLExporter(template_name="lab")
    exp.exclude_input = True
    exp.exclude_input_prompt = True
    exp.exclude_output_prompt = True
    exp.embed_images = True
    body, _ = exp.from_notebook_node(nb)
    # no network needed: drop the CDN scripts (MathJax, require.js) the template links
    body = re.sub(r'<script[^>]+src="https?://[^"]+"[^>]*>\s*</script>', "", body)
    html_path.write_text(embed_cjk_font(body), encoding="utf-8")


_DATA = re.compile(r"data:[a-z]+/[a-z0-9.+-]+;base64,[A-Za-z0-9+/=\s]+")
# the embedded CJK subset comes first: it declares a CJK unicode-range, so Latin text falls
# through to the system fonts (headless Chromium never reached a web font placed after them)
_FONT_STACK = ("'crmlab CJK', -apple-system, BlinkMacSystemFont, 'Segoe UI', Helvetica, Arial, 'PingFang SC', "
               "'Microsoft YaHei', sans-serif")


def embed_cjk_font(html_text: str) -> str:
    """Embed the Noto Sans CJK SC glyphs this page uses (a subset, a few tens of KB), so
    Chinese text renders on a reader's machine that has no CJK font, offline."""
    import base64
    import io

    chars = {c for c in _DATA.sub("", html_text) if ord(c) >= 0x2E80}
    from crmlab.figures import cjk_font_path

    path = cjk_font_path()
    if not chars or path is None:
        return html_text
    from fontTools import subset

    opts = subset.Options()
    opts.desubroutinize = True
    font = subset.load_font(path, opts)
    sub = subset.Subsetter(opts)
    sub.populate(text="".join(sorted(chars)))
    sub.subset(font)
    buf = io.BytesIO()
    font.save(buf)
    b64 = base64.b64encode(buf.getvalue()).decode()
    css = (f"<style>@font-face{{font-family:'crmlab CJK';src:url(data:font/otf;base64,{b64}) format('opentype');"
           f"unicode-range:U+2E80-9FFF,U+F900-FAFF,U+FE30-FE4F,U+FF00-FFEF;}}"
           f":root{{--jp-content-font-family:{_FONT_STACK};--jp-ui-font-family:{_FONT_STACK};}}"
           f"body,table{{font-family:{_FONT_STACK};}}</style>")
    return html_text.replace("</head>", css + "</head>", 1) if "</head>" in html_text else css + html_text


def _log(msg: str, quiet: bool) -> None:
    if not quiet:
        print(msg, file=sys.stderr, flush=True)


def _expand(out: str) -> Path:
    now = _dt.datetime.now()
    return Path(out.replace("{date}", now.strftime("%Y-%m-%d")).replace("{datetime}", now.strftime("%Y-%m-%d_%H%M")))


def run_reports(orders: str, sends: str | None = None, notebooks: Sequence[str] | None = None,
                out: str = "reports/latest", columns: str | Mapping[str, str] | None = None,
                parameters: Mapping[str, object] | None = None, quiet: bool = False,
                kernel_name: str = KERNEL, notebook_dir: Path = NOTEBOOK_DIR) -> RunResult:
    """Validate the inputs, run each notebook with papermill, write HTML and the index.

    Parameters
    ----------
    orders, sends : str
        Input files (validated with :func:`crmlab.io.load_orders` / ``load_sends`` first).
    notebooks : list of str, optional
        Names or prefixes (default: every numbered notebook).
    out : str
        Output directory; ``{date}`` expands to the run date.
    columns : str or dict
        Column mapping passed to the loaders and the notebooks.
    parameters : dict
        Extra notebook parameters (``-p`` / ``-f``); ``observation_end`` is also used for
        validation.

    Raises
    ------
    CrmlabInputError
        Bad input: nothing is run and nothing is written.
    """
    import papermill as pm

    params = dict(parameters or {})
    cols = parse_columns(columns)
    colspec = ",".join(f"{k}={v}" for k, v in cols.items())
    obs_end = params.get("observation_end")
    orders = str(Path(orders).resolve())
    load_orders(orders, columns=cols or None, observation_end=obs_end)
    if sends:
        sends = str(Path(sends).resolve())
        load_sends(sends, columns=cols or None, observation_end=obs_end)
    nbs = list_notebooks(notebooks, notebook_dir)
    target = _expand(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    tmp.chmod(0o755)
    results: list[ReportResult] = []
    started = time.time()
    try:
        for i, nb in enumerate(nbs, 1):
            name = nb.stem
            _log(f"[{i}/{len(nbs)}] {name} ...", quiet)
            t0 = time.time()
            nb_params = {"orders": orders, "sends": sends or "", "columns": colspec, "out_dir": ".", **params}
            out_nb = tmp / f"{name}.ipynb"
            error = None
            try:
                pm.execute_notebook(str(nb), str(out_nb), parameters=nb_params, kernel_name=kernel_name,
                                    cwd=str(tmp), progress_bar=False, log_output=False)
            except pm.PapermillExecutionError as e:
                error = f"{name}: failed in cell {e.cell_index}: {e.ename}: {e.evalue}"
            except Exception as e:  # kernel died, notebook unreadable, ...
                error = f"{name}: {type(e).__name__}: {e}"
            html_path = tmp / f"{name}.html"
            if out_nb.exists():
                to_html(out_nb, html_path)
                leaks = find_pii(html_path.read_text(encoding="utf-8"))
                if leaks and error is None:
                    error = f"{name}: the HTML shows personal data ({len(leaks)} phone-shaped strings); not shared"
                    html_path.write_text(f"<h1>{html.escape(name)}</h1><p>{html.escape(error)}</p>", encoding="utf-8")
            heads_file = tmp / f"{name}.headlines.json"
            heads = json.loads(heads_file.read_text(encoding="utf-8")) if heads_file.exists() else {}
            secs = time.time() - t0
            results.append(ReportResult(name, error is None, secs, error, heads))
            _log(f"[{i}/{len(nbs)}] {name} {'ok' if error is None else 'FAILED'} in {secs:.1f} s"
                 + (f"\n    {error}" if error else ""), quiet)
        run = {"run_at": _dt.datetime.fromtimestamp(started).strftime("%Y-%m-%d %H:%M:%S"),
               "seconds": round(time.time() - started, 1), "crmlab": __version__,
               "orders": os.path.basename(orders), "sends": os.path.basename(sends) if sends else None,
               "ok": all(r.ok for r in results),
               "reports": [{"name": r.name, "ok": r.ok, "seconds": round(r.seconds, 1), "error": r.error,
                            "headlines": r.headlines} for r in results]}
        (tmp / "run.json").write_text(json.dumps(run, ensure_ascii=False, indent=1), encoding="utf-8")
        (tmp / "index.html").write_text(embed_cjk_font(_index_html(run)), encoding="utf-8")
        _move_into_place(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    result = RunResult(target, results)
    if result.ok and target.name != "latest":
        _point_latest(target)
    _write_history(target.parent)
    _log(f"reports in {target}/index.html ({time.time() - started:.0f} s)", quiet)
    return result


def _move_into_place(tmp: Path, target: Path) -> None:
    if target.is_symlink():
        target.unlink()
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        target.rename(old)
        tmp.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(target)


def _point_latest(target: Path) -> None:
    latest = target.parent / "latest"
    if latest.exists() and not latest.is_symlink():
        shutil.rmtree(latest)
    tmp_link = target.parent / f".latest.tmp-{os.getpid()}"
    if tmp_link.is_symlink():
        tmp_link.unlink()
    tmp_link.symlink_to(target.name)
    os.replace(tmp_link, latest)


_CSS = ("body{margin:2em;"
        "color:#222}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px;"
        "text-align:left;vertical-align:top}.ok{color:#2b7a3d}.failed{color:#b8433d;font-weight:bold}"
        "small{color:#666}")


def _heads(h: Mapping[str, object]) -> str:
    return "<br>".join(f"{html.escape(str(k))}: <b>{html.escape(str(v))}</b>" for k, v in h.items())


def _index_html(run: Mapping) -> str:
    rows = "".join(
        f"<tr><td><a href='{html.escape(r['name'])}.html'>{html.escape(r['name'])}</a></td>"
        f"<td class='{'ok' if r['ok'] else 'failed'}'>{'ok' if r['ok'] else 'FAILED'}"
        f"{'<br><small>' + html.escape(r['error']) + '</small>' if r['error'] else ''}</td>"
        f"<td>{_heads(r['headlines'])}</td><td>{r['seconds']} s</td></tr>" for r in run["reports"])
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>crmlab reports</title>"
            f"<style>{_CSS}</style></head><body><h1>crmlab reports 报告</h1>"
            f"<p>Run at {html.escape(run['run_at'])} on <code>{html.escape(str(run['orders']))}</code>"
            f"{' and <code>' + html.escape(run['sends']) + '</code>' if run['sends'] else ''}, "
            f"crmlab {html.escape(run['crmlab'])}, {run['seconds']} s.</p>"
            f"<table><tr><th>report</th><th>status</th><th>headline numbers</th><th>time</th></tr>{rows}</table>"
            f"<p><a href='../index.html'>all runs</a></p></body></html>")


def _write_history(parent: Path) -> None:
    """``reports/index.html``: every run under ``parent`` with its headline numbers side by side."""
    runs = []
    for d in sorted(parent.iterdir()):
        f = d / "run.json"
        if d.is_dir() and not d.is_symlink() and not d.name.startswith(".") and f.exists():
            try:
                runs.append((d.name, json.loads(f.read_text(encoding="utf-8"))))
            except (OSError, json.JSONDecodeError):
                continue
    if not runs:
        return
    keys: list[tuple[str, str]] = []
    for _, r in runs:
        for rep in r["reports"]:
            for k in rep["headlines"]:
                if (rep["name"], k) not in keys:
                    keys.append((rep["name"], k))
    head = "".join(f"<th><a href='{html.escape(n)}/index.html'>{html.escape(n)}</a><br><small>"
                   f"{html.escape(r['run_at'])}</small></th>" for n, r in runs)
    status = "".join(f"<td class='{'ok' if r['ok'] else 'failed'}'>{'ok' if r['ok'] else 'FAILED'}</td>"
                     for _, r in runs)
    body = ""
    for rep, k in keys:
        cells = ""
        for _, r in runs:
            v = next((x["headlines"].get(k) for x in r["reports"] if x["name"] == rep), None)
            cells += f"<td>{'' if v is None else html.escape(str(v))}</td>"
        body += f"<tr><td><small>{html.escape(rep)}</small><br>{html.escape(k)}</td>{cells}</tr>"
    doc = (f"<!doctype html><html><head><meta charset='utf-8'><title>crmlab runs</title><style>{_CSS}</style>"
           f"</head><body><h1>crmlab runs 历次报告</h1><table><tr><th>headline</th>{head}</tr>"
           f"<tr><td>status</td>{status}</tr>{body}</table></body></html>")
    (parent / "index.html").write_text(embed_cjk_font(doc), encoding="utf-8")
