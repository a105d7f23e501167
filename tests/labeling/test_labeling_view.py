"""One task's labeling view in headless Chromium: the video, the choices and the transcript.

Drives Chromium over the DevTools protocol (websockets, already a dependency): logs in with the
admin's form, opens the task in the data manager, waits for the editor, asserts on the DOM and
keeps a screenshot (`labeling-view.png` in the test's tmp dir). Skipped when no Chromium is
installed (`apt-get install -y chromium`).
"""

from __future__ import annotations

import base64
import itertools
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from label_studio_sdk import LabelStudio
from labkit import Lab
from websockets.sync.client import ClientConnection, connect

from chfen.ingest import import_folder
from labeling import config as lc
from labeling.push import push_tasks, tasks_in_project
from warehouse import Warehouse

pytestmark = pytest.mark.slow

CHROMIUM = next(
    (p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None
)


class DevTools:
    """The smallest DevTools-protocol client: send a command, wait for its answer."""

    def __init__(self, ws: ClientConnection):
        self.ws, self.ids = ws, itertools.count(1)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        msg_id = next(self.ids)
        self.ws.send(json.dumps({"id": msg_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv(timeout=60))
            if msg.get("id") == msg_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def js(self, expression: str) -> Any:
        out = self.send("Runtime.evaluate", expression=expression, returnByValue=True)
        return out.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout_s: float = 90.0) -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.5)
        raise AssertionError(f"timed out waiting for {expression}")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[DevTools]:
    if CHROMIUM is None:
        pytest.skip("no Chromium installed (apt-get install -y chromium)")
    profile = tmp_path / "chromium-profile"
    proc = subprocess.Popen(
        [
            CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-dev-shm-usage", "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0", f"--user-data-dir={profile}",
            "--window-size=1400,1200", "--autoplay-policy=no-user-gesture-required",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + 30
        # Chromium creates the file before it writes the port: wait for the port's line.
        lines: list[str] = []
        while not lines and time.monotonic() < deadline:
            time.sleep(0.1)
            lines = port_file.read_text().splitlines() if port_file.exists() else []
        if not lines:
            raise RuntimeError(f"Chromium wrote no DevTools port to {port_file} in 30 s")
        port = int(lines[0])
        pages = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
        page = next(p for p in pages if p.get("type") == "page")
        with connect(page["webSocketDebuggerUrl"], max_size=None) as ws:
            yield DevTools(ws)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def open_task(lab: Lab, browser: DevTools, project_id: int, task_id: int) -> None:
    """Log in with the admin's form and open one task in the data manager."""
    base = lab.server.url
    ls = lab.settings.labelstudio
    browser.send("Page.enable")
    browser.send("Page.navigate", url=f"{base}/user/login/")
    browser.wait_for("!!document.querySelector('input[name=email]')")
    browser.js(
        f"document.querySelector('input[name=email]').value = {json.dumps(ls.username)};"
        f"document.querySelector('input[name=password]').value = "
        f"{json.dumps(ls.password.get_secret_value())};"
        "document.querySelector('input[name=email]').form.submit(); true"
    )
    browser.wait_for("!location.pathname.startsWith('/user/login')")
    browser.send("Page.navigate", url=f"{base}/projects/{project_id}/data?task={task_id}")
    browser.send(
        "Emulation.setDeviceMetricsOverride",
        width=1400, height=1300, deviceScaleFactor=1, mobile=False,
    )  # fmt: skip


def test_the_labeling_view_shows_video_choices_and_transcript(
    lab: Lab, client: LabelStudio, browser: DevTools, tmp_path: Path
) -> None:
    vid = lab.add_video(1, words=(" what", " a", " lovely", " morning"))
    report = push_tasks(lab.settings, lab.wh, predictions={vid: ("joy", 0.7, "m-view")})
    task_id = tasks_in_project(client, report.project_id)[vid]
    open_task(lab, browser, report.project_id, task_id)
    browser.wait_for("document.body.innerText.includes('lovely morning')")
    # The player has loaded the file's metadata: Label Studio served it to the browser.
    browser.wait_for("(document.querySelector('video') || {}).readyState >= 1", timeout_s=60)

    try:  # let the player draw a frame for the screenshot; not needed for the assertions
        browser.wait_for("document.querySelector('video').readyState >= 3", timeout_s=20)
        time.sleep(1.0)
    except AssertionError:
        pass
    dom = browser.js(
        "({video: document.querySelector('video').currentSrc,"
        " duration: document.querySelector('video').duration,"
        " text: document.body.innerText})"
    )
    shot = browser.send("Page.captureScreenshot", format="png")
    png = tmp_path / "labeling-view.png"
    png.write_bytes(base64.b64decode(shot["data"]))

    assert dom["video"].endswith(f"/data/local-files/?d=media/{vid}/video.mp4"), dom["video"]
    assert dom["duration"] == pytest.approx(2.0, abs=0.1)
    assert lc.QUESTION in dom["text"]
    assert "what a\nlovely morning" in dom["text"] or "lovely morning" in dom["text"]
    for label in lc.LABELS:
        assert label in dom["text"], label
    assert png.stat().st_size > 10_000


def test_an_audio_only_task_plays_its_audio(
    lab: Lab, client: LabelStudio, browser: DevTools, tmp_path: Path
) -> None:
    """An imported audio-only file (a generated espeak-ng wav): its task's player loads the
    file Label Studio serves and plays it (audio decoded, time advancing), no picture."""
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (apt-get install espeak-ng)")
    folder = tmp_path / "clips"
    folder.mkdir()
    wav = folder / "hello.wav"
    subprocess.run(
        ["espeak-ng", "-w", str(wav), "What a lovely morning by the sea"], check=True, timeout=60
    )
    wh = Warehouse(lab.settings.data_path)  # the server serves media from its data root
    [vid] = import_folder(wh, folder, source=f"{lab.prefix}-voice").new
    wh.mark_done(vid, "asr", "1")  # what `chfen process` records
    report = push_tasks(lab.settings, wh)
    assert not report.failed, report.failed
    task_id = tasks_in_project(client, report.project_id)[vid]
    open_task(lab, browser, report.project_id, task_id)
    browser.wait_for("(document.querySelector('video') || {}).readyState >= 1", timeout_s=60)
    browser.js("document.querySelector('video').muted = false; true")
    browser.js("document.querySelector('video').play(); true")
    browser.wait_for("document.querySelector('video').currentTime > 0.5", timeout_s=30)
    dom = browser.js(
        "(v => ({src: v.currentSrc, duration: v.duration, width: v.videoWidth,"
        " audio: v.webkitAudioDecodedByteCount, text: document.body.innerText}))"
        "(document.querySelector('video'))"
    )
    shot = browser.send("Page.captureScreenshot", format="png")
    (tmp_path / "audio-only-view.png").write_bytes(base64.b64decode(shot["data"]))
    assert dom["src"].endswith(f"/data/local-files/?d=media/{vid}/media.wav"), dom["src"]
    row = wh.rows("SELECT duration_s FROM videos_latest WHERE video_id = ?", [vid])[0]
    assert dom["duration"] == pytest.approx(row["duration_s"], abs=0.1)
    assert dom["width"] == 0  # no picture
    assert dom["audio"] > 0  # the sound was decoded for playing
    for label in lc.LABELS:
        assert label in dom["text"], label


def test_chinese_title_and_code_switched_transcript_render_as_written(
    lab: Lab, client: LabelStudio, browser: DevTools, tmp_path: Path
) -> None:
    """A Chinese video's task: the editor shows its title and transcript character for
    character (not escaped, dropped, '?' or mojibake), one line per ASR segment, the Chinese
    words unspaced as the ASR stage writes them; the code-switched lines (a Chinese sentence, an
    English one, English words inside a Chinese one) keep their spaces only around English.

    Words are stored as the ASR stage writes them (jieba words, punctuation on the word before,
    no leading spaces). The screenshot (`chinese-view.png`) shows boxes where the machine's
    Chromium has no CJK font (fonts-noto-cjk): the DOM assertions do not depend on fonts.

    Mutation-checked (labeling/push.py changed, this test run, reverted): the push sending the
    title ascii-escaped (`"\\u4eca\\u5929..."` in the view) with the transcript's non-ASCII
    as '?', the title's non-ASCII dropped (`" #"`), title and transcript as UTF-8 read as
    Latin-1 (mojibake), and the transcript's words joined with a space each (the bug fixed
    with this test: "今天 的 晚饭 做好 了。") each failed it.
    """
    title = "今天的晚饭做好了！红烧肉🍜 #家常菜"
    segments = (
        ("今天", "的", "晚饭", "做好", "了。"),
        ("Dinner", "is", "ready."),
        ("我们", "一起", "吃", "hot", "pot", "吧！"),
    )
    lines = ["今天的晚饭做好了。", "Dinner is ready.", "我们一起吃 hot pot 吧！"]
    vid = lab.add_video(1, title=title, segments=segments)
    report = push_tasks(lab.settings, lab.wh)
    assert not report.failed, report.failed
    task_id = tasks_in_project(client, report.project_id)[vid]
    open_task(lab, browser, report.project_id, task_id)
    # The editor's <Text> objects in config order: the title, then the transcript. The data
    # manager's row can show the transcript before the editor does, and the editor may draw
    # its texts again while it loads (seen once: its lines there, then gone a moment later):
    # the texts are read in the same evaluation that finds the editor's transcript drawn.
    dom = browser.wait_for(
        "(texts => texts.length && texts[texts.length - 1].includes('Dinner is ready.')"
        "  ? {texts} : null)("
        "Array.from(document.querySelectorAll('.lsf-main-content .lsf-richtext'),"
        "   t => Array.from(t.querySelectorAll('.lsf-richtext__line'), l => l.textContent)))"
    )
    shot = browser.send("Page.captureScreenshot", format="png")
    (tmp_path / "chinese-view.png").write_bytes(base64.b64decode(shot["data"]))

    assert {"title": dom["texts"][0], "transcript": dom["texts"][-1]} == {
        "title": [title],
        "transcript": lines,
    }
    assert len(dom["texts"]) == 2, dom["texts"]
