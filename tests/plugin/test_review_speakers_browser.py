"""Who speaks, on the review page in a real browser (Debian's chromium + chromium-driver, headless, through
Selenium), on a real engine job with two speakers and name labels: reassign a cue (its label follows), undo
and redo it, give a word to the other speaker (the cue becomes two-speaker and the validator says so),
rename a speaker (every label follows), reload (the draft keeps all of it), approve, and find the corrected
speakers in the written files. Screenshots are kept in the test's folder (and in CAPTIONBRIDGE_SCREENSHOTS
when set)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest
from fixtures.review import mint_link, write_review_timeline
from selenium.webdriver.common.action_chains import ActionChains  # noqa: I001  (the test extra)
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select
from test_review_browser import press, start_browser, state, wait_for


@pytest.fixture
def speaker_engine(engine_factory, tmp_path):
    eng = engine_factory("speaker-browser", job="fixtures.review:speaker_review_job")
    client = eng.start()
    timeline = write_review_timeline(tmp_path / "media" / "panel.otio")
    job = client.submit(
        timeline, {"formats": ["json", "srt", "vtt", "ass"], "speakers": 2, "speaker_marks": "label"}
    )
    assert client.wait(job["id"], timeout=60)["state"] == "succeeded"
    yield eng, client, job["id"]
    eng.stop()


@pytest.fixture
def browser():
    driver = start_browser()
    try:
        yield driver
    finally:
        driver.quit()


def shown_speaker(driver, i: int) -> tuple[str, str]:
    """(speaker id or "__mixed", name shown) of cue i, read in one go (rows are re-rendered when findings
    arrive): the row's speaker button, or its menu while open."""
    return tuple(
        driver.execute_script(
            "const s = document.querySelectorAll('#cues .cue')[arguments[0]].querySelector('.speaker');"
            "return s.tagName === 'SELECT' ? [s.value, s.options[s.selectedIndex].text]"
            " : [s.dataset.value, s.textContent]",
            i,
        )
    )


def speaker_select(driver, i: int) -> Select:
    """Click cue i's speaker button: it becomes the speaker menu."""
    driver.find_elements(By.CSS_SELECTOR, "#cues .cue")[i].find_element(
        By.CSS_SELECTOR, "button.speaker"
    ).click()
    return Select(
        driver.find_elements(By.CSS_SELECTOR, "#cues .cue")[i].find_element(By.CSS_SELECTOR, "select")
    )


def undo(driver, redo: bool = False):
    chain = ActionChains(driver).key_down(Keys.CONTROL)
    if redo:
        chain = chain.key_down(Keys.SHIFT)
    chain = chain.send_keys("z")
    if redo:
        chain = chain.key_up(Keys.SHIFT)
    chain.key_up(Keys.CONTROL).perform()


def test_reassign_and_rename_speakers_in_the_browser(speaker_engine, browser, tmp_path):
    eng, client, job_id = speaker_engine
    driver = browser
    driver.get(mint_link(client, job_id))
    wait_for(
        driver, lambda d: d.execute_script("return document.body.dataset.ready") == job_id, 15, "job view"
    )
    shots = [tmp_path / "speakers-1280x800.png", tmp_path / "speakers-edited-1280x800.png"]
    driver.save_screenshot(str(shots[0]))
    # the speakers panel and a speaker on every cue
    names = driver.find_elements(By.CSS_SELECTOR, "#speakers input[data-speaker]")
    assert [n.get_attribute("value") for n in names] == ["Ana", "Ben"]
    assert [shown_speaker(driver, i)[0] for i in range(6)] == [
        "S1",
        "S1",
        "S2",
        "S1",
        "S2",
        "S2",
    ]
    assert state(driver)["cues"][0]["text"]["en"].startswith("ANA: ")

    # reassign cue 1 to Ben: its speaker and its label change, one undo step
    speaker_select(driver, 0).select_by_value("S2")
    s = state(driver)
    assert s["cues"][0]["speakers"] == ["S2"] and s["cues"][0]["text"]["en"].startswith("BEN: ")
    assert "BEN: " in driver.find_elements(By.CSS_SELECTOR, "#cues .cue .text")[0].text
    driver.find_element(By.ID, "cues").click()
    undo(driver)
    s = state(driver)
    assert s["cues"][0]["speakers"] == ["S1"] and s["cues"][0]["text"]["en"].startswith("ANA: ")
    assert shown_speaker(driver, 0) == ("S1", "Ana")
    undo(driver, redo=True)
    assert state(driver)["cues"][0]["speakers"] == ["S2"]

    # give one word of cue 4 (Ana's) to Ben: the cue now has two speakers, which the validator flags
    words = driver.find_elements(By.CSS_SELECTOR, "#cues .cue")[3].find_elements(By.CSS_SELECTOR, ".w")
    given = state(driver)["wordSpeakers"]  # cue 1's words went to Ben with it
    assert len(given) == len(state(driver)["cues"][0]["text"]["en"].split()) - 1 and set(given.values()) == {
        "S2"
    }
    words[-1].click()
    assert state(driver)["selectedWord"] >= 0
    Select(driver.find_element(By.ID, "word-speaker")).select_by_value("S2")
    s = state(driver)
    assert s["cues"][3]["speakers"] == ["S1", "S2"] and len(s["wordSpeakers"]) == len(given) + 1
    row3 = "return document.querySelectorAll('#cues .cue')[3]"  # (rows are re-rendered when findings arrive)
    wait_for(
        driver,
        lambda d: "speaker-form" in d.execute_script(row3 + ".textContent"),
        10,
        "the two-speaker finding",
    )
    assert "hard" in driver.execute_script(row3 + ".className")
    # split before that word (S): each half is spoken by its own words' speaker
    driver.execute_script("document.activeElement.blur()")  # (the Word speaker menu had the keyboard)
    press(driver, "s")
    s = state(driver)
    assert len(s["cues"]) == 7 and s["cues"][3]["speakers"] == ["S1"] and s["cues"][4]["speakers"] == ["S2"]
    undo(driver)  # the split
    assert len(state(driver)["cues"]) == 6
    driver.find_element(By.ID, "cues").click()
    undo(driver)  # back to Ana's alone
    s = state(driver)
    assert s["cues"][3]["speakers"] == ["S1"] and s["wordSpeakers"] == given
    # giving a word to the speaker it already has changes nothing
    driver.find_elements(By.CSS_SELECTOR, "#cues .cue")[1].find_elements(By.CSS_SELECTOR, ".w")[0].click()
    Select(driver.find_element(By.ID, "word-speaker")).select_by_value("S1")  # already Ana's: no change
    assert state(driver)["wordSpeakers"] == given

    # rename Ben to Bernard: the list, the selects and every BEN label follow
    field = driver.find_elements(By.CSS_SELECTOR, "#speakers input[data-speaker]")[1]
    field.click()
    field.send_keys(Keys.CONTROL, "a")
    field.send_keys("Bernard", Keys.ENTER)
    wait_for(driver, lambda d: state(d)["speakers"][1].get("name") == "Bernard", 5, "rename")
    s = state(driver)
    assert s["cues"][0]["text"]["en"].startswith("BERNARD: ") and s["cues"][2]["text"]["en"].startswith(
        "BERNARD: "
    )
    assert not any("BEN: " in c["text"]["en"] for c in s["cues"])
    assert shown_speaker(driver, 2) == ("S2", "Bernard")

    # a new speaker for one cue: "Speaker 3" joins the list; one undo takes both back
    speaker_select(driver, 4).select_by_value("__new")
    s = state(driver)
    assert s["cues"][4]["speakers"] == ["S3"] and [x["id"] for x in s["speakers"]] == ["S1", "S2", "S3"]
    assert shown_speaker(driver, 4) == ("S3", "Speaker 3")
    fields = driver.find_elements(By.CSS_SELECTOR, "#speakers input[data-speaker]")
    assert fields[2].get_attribute("placeholder") == "Speaker 3"
    driver.find_element(By.ID, "cues").click()
    undo(driver)
    s = state(driver)
    assert s["cues"][4]["speakers"] == ["S2"] and len(s["speakers"]) == 2

    # by keyboard: 1 gives the selected cue to the first speaker, Ctrl+Z takes it back
    driver.find_elements(By.CSS_SELECTOR, "#cues .cue")[5].click()
    press(driver, "1")
    assert state(driver)["cues"][5]["speakers"] == ["S1"]
    assert shown_speaker(driver, 5) == ("S1", "Ana")
    undo(driver)
    assert state(driver)["cues"][5]["speakers"] == ["S2"]

    # autosaved; a reload restores the speakers
    wait_for(driver, lambda d: "draft saved" in d.find_element(By.ID, "status").text, 10, "autosave")
    draft = json.loads((eng.config / "jobs" / job_id / "review" / "draft.json").read_text())
    assert draft["speakers"] == [{"id": "S1", "name": "Ana"}, {"id": "S2", "name": "Bernard"}]
    driver.refresh()
    wait_for(driver, lambda d: d.execute_script("return document.body.dataset.ready") == job_id, 15, "reload")
    s = state(driver)
    assert s["cues"][0]["speakers"] == ["S2"] and s["speakers"][1]["name"] == "Bernard"
    assert s["cues"][0]["text"]["en"].startswith("BERNARD: ")
    driver.find_elements(By.CSS_SELECTOR, "#cues .cue")[4].click()
    driver.save_screenshot(str(shots[1]))

    # approve: the corrected speakers in every format
    press(driver, Keys.ESCAPE)
    driver.find_element(By.ID, "approve").click()
    wait_for(driver, lambda d: d.find_element(By.ID, "versions").is_displayed(), 30, "approval")
    latest = client.request("GET", f"/v1/jobs/{job_id}/versions/latest")
    assert latest["speakers"] == [{"id": "S1", "name": "Ana"}, {"id": "S2", "name": "Bernard"}]
    assert [c["speakers"] for c in latest["cues"]] == [["S2"], ["S1"], ["S2"], ["S1"], ["S2"], ["S2"]]
    files = latest["files"]
    vtt = client.request(
        "GET", f"/v1/jobs/{job_id}/versions/1/files/{next(f for f in files if f.endswith('.vtt'))}", raw=True
    ).decode()
    assert "<v Bernard>" in vtt and "<v Ben>" not in vtt
    srt = client.request(
        "GET", f"/v1/jobs/{job_id}/versions/1/files/{next(f for f in files if f.endswith('.srt'))}", raw=True
    ).decode()
    assert srt.split("\n")[2].startswith("BERNARD: Every")

    driver.set_window_size(760, 900)
    time.sleep(0.3)
    # the approval box floats over the cue list's bottom: scrolled to the end, the last cue is above it
    last_bottom, box_top = driver.execute_script(
        "const c = document.getElementById('cues'); c.scrollTop = c.scrollHeight;"
        "const cues = c.querySelectorAll('.cue');"
        "return [cues[cues.length - 1].getBoundingClientRect().bottom,"
        " document.getElementById('versions').getBoundingClientRect().top];"
    )
    assert last_bottom <= box_top, (last_bottom, box_top)
    shots.append(tmp_path / "speakers-760x900.png")
    driver.save_screenshot(str(shots[2]))
    keep = os.environ.get("CAPTIONBRIDGE_SCREENSHOTS")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        for shot in shots:
            shutil.copy(shot, Path(keep) / shot.name)
    assert all(shot.stat().st_size > 10_000 for shot in shots)
