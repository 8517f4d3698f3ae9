"""Issue 29: scheduled runs that reach people. A real SMTP server on loopback (aiosmtpd) and a
local HTTP server standing in for the WeCom / DingTalk / Feishu robots; two runs of a small
simulated store, the second with one more week of orders.

One module fixture makes the store and the two runs of report 01 (the second through the CLI
with ``-d``), so the whole module stays within a few seconds of notebook time."""
from __future__ import annotations

import base64
import email
import hashlib
import hmac
import io
import json
import re
import socket
import threading
import urllib.parse
import zipfile
from email import policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

aiosmtpd = pytest.importorskip("aiosmtpd")
from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.smtp import AuthResult, LoginPassword  # noqa: E402

from crmlab.cli.main import main  # noqa: E402
from crmlab.privacy import find_pii  # noqa: E402
from crmlab.report.notify import EXIT_NOT_DELIVERED  # noqa: E402
from crmlab.simulate.store import write_sample  # noqa: E402

USER, PASSWORD, DING_SECRET, FEISHU_SECRET = "reports@shop.test", "right-pw-8421", "SECdingtest", "feishusecret"


# --------------------------------------------------------------------------- the stand-in servers

class _Mailbox:
    def __init__(self):
        self.mails = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's name)
        self.mails.append((list(envelope.rcpt_tos), email.message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"


def _auth(server, session, envelope, mechanism, data):
    ok = isinstance(data, LoginPassword) and data.login.decode() == USER and data.password.decode() == PASSWORD
    return AuthResult(success=ok, handled=False)  # failed: the server answers 535


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Hooks(BaseHTTPRequestHandler):
    posts: list = []

    def do_POST(self):  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])).decode("utf-8"))
        u = urllib.parse.urlsplit(self.path)
        self.posts.append((u.path, urllib.parse.parse_qs(u.query), body))
        answer = {"code": 0, "msg": "success"} if u.path == "/feishu" else {"errcode": 0, "errmsg": "ok"}
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):
        pass


@pytest.fixture(scope="module")
def servers():
    box = _Mailbox()
    port = _free_port()
    smtp = Controller(box, hostname="127.0.0.1", port=port, authenticator=_auth, auth_require_tls=False)
    smtp.start()
    http = ThreadingHTTPServer(("127.0.0.1", 0), _Hooks)
    t = threading.Thread(target=http.serve_forever, daemon=True)
    t.start()
    yield {"box": box, "smtp_port": port, "http": f"http://127.0.0.1:{http.server_address[1]}"}
    http.shutdown()
    smtp.stop()


def _delivery(tmp: Path, servers, name="delivery.yaml", smtp_port=None, pw_env="T29_PW", **extra) -> Path:
    web = servers["http"]
    text = f"""
smtp: {{host: 127.0.0.1, port: {smtp_port or servers['smtp_port']}, tls: none, user: {USER},
        password_env: {pw_env}, from: {USER}}}
success: [team@shop.test, boss@shop.test]
failure: [oncall@shop.test]
webhooks:
  - {{kind: wecom, url: "{web}/wecom?key=K1"}}
  - {{kind: dingtalk, url: "{web}/dingtalk?access_token=T1", secret_env: T29_DING}}
  - {{kind: feishu, url: "{web}/feishu", secret_env: T29_FEISHU}}
attach: {extra.get('attach', 'html')}
"""
    p = tmp / name
    p.write_text(text + extra.get("more", ""), encoding="utf-8")
    return p


@pytest.fixture(scope="module")
def env():
    mp = pytest.MonkeyPatch()
    mp.setenv("T29_PW", PASSWORD)
    mp.setenv("T29_DING", DING_SECRET)
    mp.setenv("T29_FEISHU", FEISHU_SECRET)
    yield mp
    mp.undo()


@pytest.fixture(scope="module")
def runs(tmp_path_factory, servers, env):
    """The store; run 1 on its orders less the last week, run 2 (CLI, ``-d``) on all of them."""
    root = tmp_path_factory.mktemp("delivery")
    write_sample(root / "store", n_customers=1200, seed=11)
    orders = pd.read_csv(root / "store" / "orders.csv", dtype=str)
    t = pd.to_datetime(orders["order_time"])
    (root / "week1").mkdir()
    orders[t <= t.max() - pd.Timedelta(days=7)].to_csv(root / "week1" / "orders.csv", index=False)
    (root / "week2").mkdir()
    orders.to_csv(root / "week2" / "orders.csv", index=False)
    reports = root / "reports"
    assert main(["report", "01", "--orders", str(root / "week1" / "orders.csv"), "--out", str(reports / "r1")]) == 0
    servers["box"].mails.clear()
    _Hooks.posts.clear()
    d = _delivery(root, servers)
    code = main(["report", "01", "--orders", str(root / "week2" / "orders.csv"), "--out", str(reports / "r2"),
                 "-d", str(d)])
    return {"root": root, "reports": reports, "code": code, "mails": list(servers["box"].mails),
            "posts": list(_Hooks.posts), "delivery": d}


def _run(p: Path) -> dict:
    return json.loads((p / "run.json").read_text(encoding="utf-8"))


# --------------------------------------------------------------------------- success

def test_success_sends_one_mail_with_run_json_headlines_and_an_attachment_that_opens(runs):
    assert runs["code"] == 0
    assert len(runs["mails"]) == 1
    to, msg = runs["mails"][0]
    assert sorted(to) == ["boss@shop.test", "team@shop.test"]  # the success list only
    plain = msg.get_body(preferencelist=("plain",)).get_content()
    page = msg.get_body(preferencelist=("html",)).get_content()
    run = _run(runs["reports"] / "r2")
    heads = run["reports"][0]["headlines"]
    assert heads
    for k, v in heads.items():
        value = v["value"] if isinstance(v, dict) else v
        assert f"{k}: {value}" in plain
        assert value in page
    zips = [p for p in msg.iter_attachments() if p.get_filename().endswith(".zip")]
    assert len(zips) == 1
    z = zipfile.ZipFile(io.BytesIO(zips[0].get_content()))
    names = sorted(Path(n).name for n in z.namelist())
    assert names == ["01_store_overview.html", "index.html"]
    assert "店铺概况" in z.read("r2/01_store_overview.html").decode("utf-8")
    for text in (plain, page, msg["Subject"]):  # no personal data, no local path
        assert not find_pii(text)
        assert str(runs["root"]) not in text


def test_success_posts_one_message_per_webhook_in_its_format(runs):
    posts = {path: (q, body) for path, q, body in runs["posts"]}
    assert len(runs["posts"]) == 3 and set(posts) == {"/wecom", "/dingtalk", "/feishu"}
    first = next(iter(_run(runs["reports"] / "r2")["reports"][0]["headlines"]))
    q, body = posts["/wecom"]
    assert body["msgtype"] == "markdown" and first in body["markdown"]["content"] and q["key"] == ["K1"]
    q, body = posts["/dingtalk"]
    assert body["msgtype"] == "markdown" and set(body["markdown"]) == {"title", "text"}
    assert first in body["markdown"]["text"]
    # DingTalk's documented signature: base64(HMAC-SHA256(secret, f"{timestamp}\n{secret}")), URL-encoded
    ts = q["timestamp"][0]
    want = base64.b64encode(hmac.new(DING_SECRET.encode(), f"{ts}\n{DING_SECRET}".encode(), hashlib.sha256).digest())
    assert q["sign"] == [want.decode()]  # parse_qs undoes the URL encoding
    q, body = posts["/feishu"]
    assert body["msg_type"] == "text" and first in body["content"]["text"]
    # Feishu's: base64(HMAC-SHA256(key=f"{timestamp}\n{secret}", msg=b""))
    key = f"{body['timestamp']}\n{FEISHU_SECRET}".encode()
    assert body["sign"] == base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    for _, _, b in runs["posts"]:
        assert "r2/index.html" in json.dumps(b, ensure_ascii=False)  # the run's location
        assert str(runs["root"]) not in json.dumps(b, ensure_ascii=False)


# --------------------------------------------------------------------------- since last run

def _num(text: str) -> float:
    """The test's own reading of a headline: digits, the decimal point and the sign; % as a fraction."""
    s = text.replace(",", "").replace("−", "-")
    x = float(re.sub(r"[^0-9.\-]", "", s))
    return x / 100 if s.endswith("%") else x


def test_since_last_run_equals_a_hand_computation_from_the_two_run_json(runs):
    r1, r2 = _run(runs["reports"] / "r1"), _run(runs["reports"] / "r2")
    since = r2["since_last_run"]
    assert since["run"] == "r1"
    h1, h2 = r1["reports"][0]["headlines"], r2["reports"][0]["headlines"]
    # run 1's data ends on 24 December: 01 shows Jan–Nov (same months), run 2 the whole year
    was = {re.sub(r" Jan–Nov$", "", k): k for k in h1}
    assert set(was) == set(h2) and len(h2) == 4
    got = {c["headline"]: c for c in since["changes"]}
    assert set(got) == set(h2)
    moved = 0
    for k in h2:
        before, now = h1[was[k]]["value"], h2[k]["value"]
        d = _num(now) - _num(before)
        assert got[k]["before"] == before and got[k]["now"] == now
        assert got[k].get("previous_headline", k) == was[k]
        assert got[k]["delta"] == pytest.approx(d, abs=1e-9)
        assert got[k]["direction"] == ("up" if d > 0 else "down" if d < 0 else "same")
        assert got[k]["beyond_interval"] is None  # 01's headlines carry no interval
        moved += d != 0
    assert moved >= 2  # a week of orders moves the year's sales and orders
    sales = next(k for k in h2 if k.startswith("paid orders"))
    assert got[sales]["delta"] > 0 and got[sales]["change"].startswith(f"+{int(got[sales]['delta']):,}")
    page = (runs["reports"] / "r2" / "index.html").read_text(encoding="utf-8")
    assert "Since last run" in page and got[sales]["change"] in page.replace("&#x27;", "'")
    assert "Since last run" in runs["mails"][0][1].get_body(preferencelist=("plain",)).get_content()


# --------------------------------------------------------------------------- failure

def test_failing_run_sends_only_the_failure_notice(runs, servers, tmp_path):
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("raise ValueError('boom 29')")]
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    nb.metadata["language_info"] = {"name": "python"}
    bad = tmp_path / "01_broken.ipynb"
    nbformat.write(nb, str(bad))
    servers["box"].mails.clear()
    _Hooks.posts.clear()
    out = runs["reports"] / "r2"
    code = main(["report", str(bad), "--orders", str(runs["root"] / "week2" / "orders.csv"), "--out", str(out),
                 "-d", str(runs["delivery"])])
    assert code == 1
    assert (out / "run.json").exists() and _run(out)["ok"] is True  # the good run was not replaced
    assert len(servers["box"].mails) == 1
    to, msg = servers["box"].mails[0]
    assert to == ["oncall@shop.test"]  # nothing to the success list
    text = msg.get_body(preferencelist=("plain",)).get_content()
    assert "01_broken" in text and "failed in cell 2" in text and "ValueError: boom 29" in text  # 0: injected parameters
    assert not list(msg.iter_attachments())
    assert len(_Hooks.posts) == 3 and all("boom 29" in json.dumps(b) for _, _, b in _Hooks.posts)


# --------------------------------------------------------------------------- what goes wrong

def test_bad_password_is_one_line_exit_3_and_the_run_is_kept(runs, servers, monkeypatch, capsys):
    monkeypatch.setenv("T29_PW", "wrong-password-123")
    run = runs["reports"] / "r2"
    servers["box"].mails.clear()
    assert main(["deliver", str(run), "-d", str(runs["delivery"])]) == EXIT_NOT_DELIVERED == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "refused the login" in err[0] and "wrong-password" not in err[0]
    assert servers["box"].mails == [] and (run / "run.json").exists()


def test_unreachable_host_is_one_line_exit_3(runs, servers, tmp_path, capsys):
    d = _delivery(tmp_path, servers, smtp_port=_free_port())  # nobody listens there
    run = runs["reports"] / "r2"
    assert main(["deliver", str(run), "-d", str(d)]) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot reach 127.0.0.1" in err[0] and (run / "run.json").exists()


def test_bad_input_is_exit_2_and_the_failure_list_hears_it(runs, servers, tmp_path, capsys):
    servers["box"].mails.clear()
    _Hooks.posts.clear()
    bad = tmp_path / "orders.csv"
    bad.write_text("customer_id,amount\nC1,5\n", encoding="utf-8")  # no order time: refused before any report
    out = tmp_path / "reports" / "r"
    assert main(["report", "01", "--orders", str(bad), "--out", str(out), "-d", str(runs["delivery"])]) == 2
    assert not out.exists()
    (to, msg), = servers["box"].mails
    assert to == ["oncall@shop.test"] and "not run" in msg["Subject"]
    text = msg.get_body(preferencelist=("plain",)).get_content()
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("crmlab: error:") and str(tmp_path) not in text
    assert len(_Hooks.posts) == 3


@pytest.mark.parametrize("text, says", [
    ("success: [a@b.test]\n", "need an smtp section"),
    ("webhooks: [{kind: slack, url: 'http://x'}]\n", "kind must be one of"),
    ("smtp: {host: h, password: secret}\nsuccess: [a@b.test]\n", "never in the file"),
    ("smtp: {host: h, tls: maybe}\nsuccess: [a@b.test]\n", "tls must be one of"),
    ("success: [not-an-address]\nsmtp: {host: h}\n", "not an e-mail address"),
    ("attach: word\nwebhooks: [{kind: wecom, url: 'http://x'}]\n", "attach must be one of"),
    ("sucess: [a@b.test]\n", "unknown key 'sucess'"),
    ("alerts: [{report: '02'}]\nwebhooks: [{kind: wecom, url: 'http://x'}]\n", "report and headline"),
    (": : :\n", "not valid YAML")])
def test_malformed_delivery_file_is_exit_2_before_anything_runs(tmp_path, capsys, text, says):
    d = tmp_path / "d.yaml"
    d.write_text(text, encoding="utf-8")
    out = tmp_path / "never"
    assert main(["report", "01", "--orders", str(tmp_path / "missing.csv"), "--out", str(out), "-d", str(d)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0] and not out.exists()


# --------------------------------------------------------------------------- PDF with Chinese

def _visible_cjk(page: str) -> set[str]:
    """The Chinese characters a reader sees in a page's text (not in its styles, links bar or images)."""
    for tag in ("style", "script", "title", "header", "footer", "nav"):
        page = re.sub(rf"<{tag}\b.*?</{tag}>", " ", page, flags=re.S)
    page = re.sub(r"<[^>]+>", " ", page)
    return {c for c in page if "\u4e00" <= c <= "\u9fff"}


def _fonts_embedded(reader) -> bool:
    """Every font the PDF uses carries its glyphs (nothing is left to the reader's machine)."""
    for p in reader.pages:
        for f in (p["/Resources"].get("/Font") or {}).values():
            f = f.get_object()
            if f.get("/Subtype") == "/Type3":  # glyphs drawn in the file itself (Chromium's CFF/OTF fonts)
                if "/CharProcs" not in f:
                    return False
                continue
            desc = (f["/DescendantFonts"][0].get_object() if "/DescendantFonts" in f else f).get("/FontDescriptor")
            if desc is None or not any(k in desc.get_object() for k in ("/FontFile", "/FontFile2", "/FontFile3")):
                return False
    return True


def test_pdf_attachments_keep_their_chinese(runs, servers, tmp_path):
    from crmlab.report.pdf import chromium_path

    if chromium_path() is None:
        pytest.skip("no Chromium here: PDFs are not made (the mail carries the HTML zip instead)")
    pypdf = pytest.importorskip("pypdf")
    servers["box"].mails.clear()
    d = _delivery(tmp_path, servers, attach="pdf")
    run = runs["reports"] / "r2"
    assert main(["deliver", str(run), "-d", str(d)]) == 0
    (_, msg), = servers["box"].mails
    pdfs = {p.get_filename(): p.get_content() for p in msg.iter_attachments()}
    assert set(pdfs) == {"01_store_overview.pdf"}
    reader = pypdf.PdfReader(io.BytesIO(pdfs["01_store_overview.pdf"]))
    text = "".join(p.extract_text() for p in reader.pages)
    want = _visible_cjk((run / "01_store_overview.html").read_text(encoding="utf-8"))
    assert "店铺概况" in text and len(want) > 10
    assert want <= set(text), f"missing from the PDF: {''.join(sorted(want - set(text)))}"
    boxes = [text[max(0, m.start() - 60):m.end() + 20] for m in re.finditer("[\ufffd\u25a1]", text)]
    assert not boxes and _fonts_embedded(reader)
    # the run's index too: printed before its embedded font loaded, its text came out blank
    from crmlab.report.pdf import html_to_pdf

    reader = pypdf.PdfReader(html_to_pdf(run / "index.html", tmp_path / "index.pdf"))
    text = "".join(p.extract_text() for p in reader.pages)
    assert _visible_cjk((run / "index.html").read_text(encoding="utf-8")) <= set(text) and "报告" in text
