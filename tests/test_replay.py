"""Replay in pywb: every capture time of a real `monitor check` run shows the page, a 304 included.

pywb's front end monkeypatches the standard library with gevent when imported, so
it runs in a child Python process: it indexes the run's WARC files into a
collection (as `wb-manager add` does) and replays through its WSGI app.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import json_lines, run, write_config
from warcio.archiveiterator import ArchiveIterator
from werkzeug import Request, Response

from monitor.models import format_time, utc_now

ROOT = Path(__file__).resolve().parent.parent


def pywb_python() -> str | None:
    """A Python that has pywb: $MONITOR_PYWB_PYTHON, the repo's .pywb venv (.ci/run makes it:
    pywb's brotlipy would shadow the monitor's brotli), or this one."""
    candidates = [os.environ.get("MONITOR_PYWB_PYTHON"), str(ROOT / ".pywb" / "bin" / "python")]
    for candidate in candidates:
        if candidate and Path(candidate).exists():
            return candidate
    return sys.executable if importlib.util.find_spec("pywb") else None


PYWB_PYTHON = pywb_python()
pytestmark = pytest.mark.skipif(
    PYWB_PYTHON is None, reason="pywb is not installed (.ci/run installs it in .pywb/)"
)

PAGE = b"<html><body><div class='row'><h3>Film Forward</h3></div></body></html>"
ETAG = '"v1"'

REPLAY = r"""
import json, os, sys, warnings
warnings.simplefilter("ignore")
from pathlib import Path
root, url = Path(sys.argv[1]), sys.argv[2]
root.mkdir(exist_ok=True)
os.chdir(root)
from pywb.manager.manager import CollectionsManager
manager = CollectionsManager("monitor", colls_dir=str(root / "collections"), must_exist=False)
manager.add_collection()
manager.add_archives(sys.argv[4:])
from pywb.apps.frontendapp import FrontEndApp
from werkzeug.test import Client
client = Client(FrontEndApp(custom_config={"collections_root": "collections"}))
out = {}
for stamp in sys.argv[3].split(","):
    answer = client.get(f"/monitor/{stamp}id_/{url}")
    out[stamp] = {"status": answer.status_code, "body": answer.get_data(as_text=True),
                  "memento": answer.headers.get("Memento-Datetime")}
print(json.dumps(out))
"""


def with_etag(request: Request) -> Response:
    if request.headers.get("If-None-Match") == ETAG:
        return Response(status=304, headers={"ETag": ETAG})
    return Response(PAGE, content_type="text/html", headers={"ETag": ETAG})


def warc_dates(warc_dir: Path) -> dict[str, str]:
    """WARC-Date of the response and of the revisit records, by record type."""
    dates = {}
    for path in sorted(warc_dir.glob("*.warc.gz")):
        with open(path, "rb") as stream:
            for record in ArchiveIterator(stream):
                if record.rec_type in ("response", "revisit"):
                    dates[record.rec_type] = record.rec_headers.get_header("WARC-Date")
    return dates


def test_a_304_capture_replays_in_pywb_as_the_page(site, tmp_path: Path) -> None:
    """pywb replays the capture time of a 304 check as the 200 body it confirmed."""
    site.serve("/page", with_etag)
    select = {"item": ".row", "title": "h3", "link": "a[href]", "description": "p"}
    page = {"name": "page", "url": site.url("/page"), "role": "active", "select": select}
    config = write_config(tmp_path, [page])
    checked = run(config, "check")
    assert checked.exit_code == 0, checked.stderr
    first = json_lines(run(config, "snapshots", "--json"))
    while format_time(utc_now()) == first[0]["at"]:  # pywb tells captures apart by the second
        time.sleep(0.05)
    assert run(config, "check").exit_code == 0
    assert site.requests[-1].headers.get("If-None-Match") == ETAG  # the server answered 304

    warc_dir = tmp_path / "data" / "warc"
    dates = warc_dates(warc_dir)
    assert dates["response"] < dates["revisit"]
    stamps = [d.replace("-", "").replace(":", "").replace("T", "").rstrip("Z") for d in
              (dates["response"], dates["revisit"])]
    replay = subprocess.run(
        [str(PYWB_PYTHON), "-c", REPLAY, str(tmp_path / "pywb"), site.url("/page"),
         ",".join(stamps), *map(str, sorted(warc_dir.glob("*.warc.gz")))],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert replay.returncode == 0, replay.stderr
    answers = json.loads(replay.stdout.strip().splitlines()[-1])
    for stamp in stamps:
        assert answers[stamp]["status"] == 200, answers
        assert answers[stamp]["body"] == PAGE.decode()
    # the 304's own capture was replayed, not the nearest 200 in its place
    revisit_time = answers[stamps[1]]["memento"]
    assert revisit_time is not None and revisit_time != answers[stamps[0]]["memento"]
