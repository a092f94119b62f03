"""The review page in a real browser (Debian's chromium + chromium-driver, headless, through Selenium): open a
job from a one-time link, play a cue, move cue edges by drag and by keyboard, edit, split, merge, undo,
approve, and find the approved version in the written SRT and OTIO. Screenshots of the job view at two window
sizes are kept in the test's folder (and in CAPTIONBRIDGE_SCREENSHOTS when set)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import opentimelineio as otio
import pytest
from fixtures.review import SCRIPT, PageClient, mint_link

from captionbridge.core.timeline.timebase import Timebase

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):  # pragma: no cover - CI installs both
    pytest.fail("chromium and chromium-driver are not installed: run bash .ci/system-packages", pytrace=False)

from selenium import webdriver  # noqa: E402  (the test extra)
from selenium.webdriver.chrome.options import Options  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


def start_browser(width: int = 1280, height: int = 800):
    options = Options()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        f"--window-size={width},{height}",
        "--autoplay-policy=no-user-gesture-required",
        "--mute-audio",
        "--disable-dev-shm-usage",
    ):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))


def state(driver) -> dict:
    return driver.execute_script("return JSON.parse(JSON.stringify(window.__cbReview.state()))")


def wait_for(driver, condition, timeout: float = 10.0, what: str = ""):
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(lambda d: condition(d), message=what)


def press(driver, *keys):
    ActionChains(driver).send_keys(*keys).perform()


def alt(driver, key, shift: bool = False):
    chain = ActionChains(driver).key_down(Keys.ALT)
    if shift:
        chain = chain.key_down(Keys.SHIFT)
    chain = chain.send_keys(key)
    if shift:
        chain = chain.key_up(Keys.SHIFT)
    chain.key_up(Keys.ALT).perform()


def row(driver, i: int):
    return driver.find_elements(By.CSS_SELECTOR, "#cues .cue")[i]


@pytest.fixture
def browser():
    driver = start_browser()
    try:
        yield driver
    finally:
        driver.quit()


def test_review_a_job_in_the_browser(review_engine, browser, tmp_path):
    eng, client, job_id, timeline = review_engine
    driver = browser
    url = mint_link(client, job_id)
    driver.get(url)
    wait_for(
        driver, lambda d: d.execute_script("return document.body.dataset.ready") == job_id, 15, "job view"
    )
    assert "token" not in driver.execute_script("return document.cookie")  # HttpOnly: the page cannot read it
    s = state(driver)
    view = json.loads(
        PageClient(client.base_url).request("GET", "/review/api/jobs", cookie=False)[2] or b"{}"
    )
    assert view.get("error")  # (without the cookie) - the browser's session is the only key
    cues0 = s["cues"]
    assert len(cues0) == 6
    tb = Timebase.from_start_timecode("24000/1001", "01:00:00:00", False)

    # timecodes on the page are the engine's own (also a drop-frame clock, at minute boundaries)
    shown = driver.find_elements(By.CSS_SELECTOR, "#cues .cue .tc.in")
    assert [e.text for e in shown] == [tb.timecode(c["start_frame"]) for c in cues0]
    df = Timebase.from_start_timecode("30000/1001", "00:59:59;28", True)
    for frame in (0, 1, 2, 3, 1799, 1800, 1801, 17981, 17982, 107892, 107893):
        js = driver.execute_script(
            "return window.__cbReview.timecode(arguments[0], arguments[1])",
            frame,
            {"rate": "30000/1001", "start_timecode": "00:59:59;28", "drop_frame": True},
        )
        assert js == df.timecode(frame), frame
    # low-confidence words are marked, by the default threshold of the editor markers
    lows = driver.find_elements(By.CSS_SELECTOR, "#cues .w.low")
    assert len(lows) == sum(1 for n in range(sum(len(line.split()) for line in SCRIPT)) if n % 4 == 3)
    assert driver.find_element(By.ID, "threshold").get_attribute("value") == "0.5"
    # N goes to the next low-confidence word: selected, and the playhead on its first frame
    row(driver, 0).click()
    press(driver, "n")
    s = state(driver)
    words = json.loads(
        PageClient(client.base_url).request(
            "GET",
            f"/v1/jobs/{job_id}/result",
            cookie=False,
            headers={"Authorization": f"Bearer {client.token}"},
        )[2]
    )
    low_words = [w for w in sorted(words["words"], key=lambda w: w["start_frame"]) if w["confidence"] < 0.5]
    assert s["selectedWord"] >= 0
    selected = driver.find_element(By.CSS_SELECTOR, "#cues .w.sel")
    assert selected.text == low_words[0]["text"] and "low" in selected.get_attribute("class")
    t = driver.execute_script("return document.getElementById('audio').currentTime")
    assert abs(t - low_words[0]["start_frame"] * 1001 / 24000) < 0.002
    # the threshold slider re-marks the words (0.2: none of these is that unsure)
    driver.execute_script(
        "const t = document.getElementById('threshold'); t.value = 0.2;t.dispatchEvent(new Event('input'))"
    )
    assert driver.find_elements(By.CSS_SELECTOR, "#cues .w.low") == []
    driver.execute_script(
        "const t = document.getElementById('threshold'); t.value = 0.5;t.dispatchEvent(new Event('input'))"
    )
    assert len(driver.find_elements(By.CSS_SELECTOR, "#cues .w.low")) == len(lows)

    # play a cue: the audio element advances, and stops at the cue's end
    row(driver, 1).click()
    press(driver, Keys.ENTER)
    start = driver.execute_script("return document.getElementById('audio').currentTime")
    wait_for(
        driver,
        lambda d: d.execute_script("return document.getElementById('audio').currentTime") > start + 0.3,
        10,
        "audio playing",
    )
    press(driver, " ")  # pause
    wait_for(driver, lambda d: d.execute_script("return document.getElementById('audio').paused"), 5)
    # play from here: double-click on the waveform
    canvas = driver.find_element(By.ID, "wave")
    ActionChains(driver).move_to_element_with_offset(canvas, 0, 40).double_click().perform()
    here = driver.execute_script("return document.getElementById('audio').currentTime")
    wait_for(
        driver,
        lambda d: d.execute_script("return document.getElementById('audio').currentTime") > here + 0.2,
        10,
        "playing from the double-clicked point",
    )
    press(driver, " ")
    wait_for(driver, lambda d: d.execute_script("return document.getElementById('audio').paused"), 5)

    # move cue 2's out-point by dragging its edge on the waveform: snapped to frames, never past the gap
    driver.execute_script("document.getElementById('audio').currentTime = 0")
    row(driver, 1).click()
    x = driver.execute_script("return window.__cbReview.edgeX(1, 'end')")
    assert x is not None
    canvas = driver.find_element(By.ID, "wave")
    width = canvas.size["width"]
    before = state(driver)["cues"][1]
    ActionChains(driver).move_to_element_with_offset(
        canvas, int(x - width / 2), 30
    ).click_and_hold().move_by_offset(-25, 0).move_by_offset(-15, 0).release().perform()
    after = state(driver)["cues"][1]
    assert after["end_frame"] < before["end_frame"] and after["start_frame"] == before["start_frame"]
    assert isinstance(after["end_frame"], int)
    # dragging far right stops 2 frames before the next cue
    x = driver.execute_script("return window.__cbReview.edgeX(1, 'end')")
    ActionChains(driver).move_to_element_with_offset(
        canvas, int(x - width / 2), 30
    ).click_and_hold().move_by_offset(400, 0).release().perform()
    s = state(driver)
    assert s["cues"][1]["end_frame"] == s["cues"][2]["start_frame"] - 2

    # and by keyboard: Alt+Right moves the in-point a frame later, Alt+Shift+Left the out-point a frame
    # earlier
    row(driver, 3).click()
    c3 = state(driver)["cues"][3]
    alt(driver, Keys.ARROW_RIGHT)
    alt(driver, Keys.ARROW_LEFT, shift=True)
    c3b = state(driver)["cues"][3]
    assert (c3b["start_frame"], c3b["end_frame"]) == (c3["start_frame"] + 1, c3["end_frame"] - 1)
    assert driver.find_elements(By.CSS_SELECTOR, "#cues .cue .tc.in")[3].text == tb.timecode(
        c3["start_frame"] + 1
    )
    # its first word now starts a frame before the cue: the words keep their confidence colours all the same
    # (they went plain when an edge moved into a word)
    assert len(row(driver, 3).find_elements(By.CSS_SELECTOR, ".w")) == len(SCRIPT[3].split())

    # edit text (double-click, type, Ctrl+Enter keeps it)
    text_cell = row(driver, 0).find_element(By.CSS_SELECTOR, ".text")
    ActionChains(driver).double_click(text_cell).perform()
    editor = wait_for(driver, lambda d: d.find_element(By.CSS_SELECTOR, "textarea.editor"), 5)
    editor.send_keys(Keys.CONTROL, "a")
    editor.send_keys("Every deliverable goes through\na careful review pass")
    ActionChains(driver).key_down(Keys.CONTROL).send_keys(Keys.ENTER).key_up(Keys.CONTROL).perform()
    assert state(driver)["cues"][0]["text"]["en"] == "Every deliverable goes through\na careful review pass"

    # split cue 5 before its word "served" (click the word, press S), then merge it back (M), then undo the
    # merge
    n_before = len(state(driver)["cues"])
    word = [w for w in row(driver, 4).find_elements(By.CSS_SELECTOR, ".w") if w.text == "served"][0]
    word.click()
    press(driver, "s")
    s = state(driver)
    assert len(s["cues"]) == n_before + 1
    assert (
        s["cues"][4]["text"]["en"] == "The page is"
        and s["cues"][5]["text"]["en"] == "served by the engine itself"
    )
    assert s["cues"][5]["start_frame"] - s["cues"][4]["end_frame"] == 2
    row(driver, 4).click()
    press(driver, "m")
    s = state(driver)
    assert (
        len(s["cues"]) == n_before and s["cues"][4]["text"]["en"] == "The page is served by the engine itself"
    )
    ActionChains(driver).key_down(Keys.CONTROL).send_keys("z").key_up(Keys.CONTROL).perform()
    s = state(driver)
    assert len(s["cues"]) == n_before + 1, "undo brings the split back"
    split_cues = s["cues"]

    # the draft is autosaved (a reload would restore it)
    wait_for(driver, lambda d: "draft saved" in d.find_element(By.ID, "status").text, 10, "autosave")
    draft = json.loads((eng.config / "jobs" / job_id / "review" / "draft.json").read_text())
    assert len(draft["cues"]) == len(split_cues)

    shots = [tmp_path / "job-view-1280x800.png", tmp_path / "job-view-760x900.png"]
    driver.save_screenshot(str(shots[0]))

    # approve: a new version, written in every format
    driver.find_element(By.ID, "approve").click()
    wait_for(driver, lambda d: d.find_element(By.ID, "versions").is_displayed(), 30, "approval")
    assert "Version 1 approved" in driver.find_element(By.ID, "versions").text
    versions = client.request("GET", f"/v1/jobs/{job_id}/versions")["versions"]
    assert [v["version"] for v in versions] == [1]
    files = versions[0]["files"]
    assert {Path(f).suffix for f in files} >= {".json", ".srt", ".vtt", ".otio", ".fcpxml"}
    srt_name = next(f for f in files if f.endswith(".srt"))
    srt = client.request("GET", f"/v1/jobs/{job_id}/versions/1/files/{srt_name}", raw=True).decode()
    assert "Every deliverable goes through\na careful review pass" in srt
    assert "The page is\n" in srt and "served by the engine itself" in srt
    moved = split_cues[3]
    ms = tb.ms_ceil(moved["start_frame"])
    assert f"{ms // 3600000:02d}:{ms // 60000 % 60:02d}:{ms // 1000 % 60:02d},{ms % 1000:03d}" in srt
    otio_name = next(f for f in files if f.endswith(".otio"))
    otio_text = client.request("GET", f"/v1/jobs/{job_id}/versions/1/files/{otio_name}", raw=True).decode()
    tl = otio.adapters.read_from_string(otio_text, "otio_json")
    subs = [
        c
        for c in tl.find_clips()
        if "served by the engine itself" in json.dumps(dict(c.metadata), default=str)
        or c.name == "served by the engine itself"
    ]
    assert subs, "the split cue is in the approved OTIO"
    latest = client.request("GET", f"/v1/jobs/{job_id}/versions/latest")
    assert len(latest["cues"]) == len(split_cues) and latest["version"] == 1

    # the second window size: a narrow panel-like window
    driver.set_window_size(760, 900)
    time.sleep(0.3)
    driver.save_screenshot(str(shots[1]))
    keep = os.environ.get("CAPTIONBRIDGE_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for shot in shots:
            shutil.copy(shot, Path(keep) / shot.name)
    assert all(shot.stat().st_size > 10_000 for shot in shots)


def test_a_replayed_link_and_a_foreign_page_get_nothing(review_engine, browser):
    _, client, job_id, _ = review_engine
    url = mint_link(client, job_id)
    browser.get(url)
    wait_for(browser, lambda d: d.execute_script("return document.body.dataset.ready") == job_id, 15)
    browser.delete_all_cookies()
    browser.get(url)  # the same link, a second time
    assert "already used" in browser.find_element(By.TAG_NAME, "body").text
    browser.get(client.base_url + "/review/")
    assert "new link" in browser.find_element(By.TAG_NAME, "body").text
    # a page on another origin cannot read the job list, even from a browser that has a session
    browser.get(mint_link(client, job_id))
    wait_for(browser, lambda d: d.execute_script("return document.body.dataset.ready") == job_id, 15)
    foreign = client.base_url.replace("127.0.0.1", "localhost")
    browser.get(foreign + "/v1/health")  # another origin (localhost:PORT), any page of it
    result = browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        fetch(arguments[0] + '/review/api/jobs', {credentials: 'include'})
          .then(r => done('status ' + r.status))
          .catch(e => done('blocked ' + e));""",
        client.base_url,
    )
    assert result.startswith("blocked") or result in ("status 401", "status 403"), result


def test_the_review_queue_lists_the_least_sure_cues_across_jobs(review_engine, browser):
    """Issue 17: a queue across jobs, least sure first, with a threshold the user sets; a row opens its
    cue."""
    _, client, job_id, timeline = review_engine
    second = client.submit(timeline, {"formats": ["json"]})
    assert client.wait(second["id"], timeout=60)["state"] == "succeeded"
    driver = browser
    driver.get(mint_link(client))  # the job list
    wait_for(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#queue tbody tr")) > 0, 15, "queue rows")
    rows = driver.find_elements(By.CSS_SELECTOR, "#queue tbody tr")
    confidences = [float(r.find_elements(By.TAG_NAME, "td")[0].text) for r in rows]
    assert confidences == sorted(confidences) and max(confidences) < 0.5
    assert {r.get_attribute("data-job") for r in rows} == {job_id, second["id"]}  # across jobs
    # the threshold is the user's: below every word's confidence, the queue is empty
    driver.execute_script(
        "const s = document.querySelector('#queue-threshold'); s.value = 0.2;"
        "s.dispatchEvent(new Event('input'));"
    )
    wait_for(driver, lambda d: not d.find_elements(By.CSS_SELECTOR, "#queue tbody tr"), 10, "empty queue")
    driver.execute_script(
        "const s = document.querySelector('#queue-threshold'); s.value = 0.5;"
        "s.dispatchEvent(new Event('input'));"
    )
    wait_for(driver, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#queue tbody tr")) == len(rows), 10)
    target = driver.find_elements(By.CSS_SELECTOR, "#queue tbody tr")[2]
    cue_number = int(target.find_elements(By.TAG_NAME, "td")[2].text)
    target_job = target.get_attribute("data-job")
    target.find_element(By.TAG_NAME, "a").click()
    wait_for(
        driver, lambda d: d.execute_script("return document.body.dataset.ready") == target_job, 15, "job view"
    )
    wait_for(driver, lambda d: state(d)["selected"] == cue_number - 1, 10, "the queued cue is selected")
