"""The review page's security, with real requests to a real engine: one-time links, the session cookie,
foreign origins, the CSP, and file names that try to leave the job's folder."""

from __future__ import annotations

import json
import re

import pytest
from fixtures.review import PageClient, mint_link


@pytest.fixture
def page(review_engine):
    eng, client, job_id, _ = review_engine
    page = PageClient(client.base_url)
    status, headers, _ = page.open_link(mint_link(client, job_id))
    assert status == 303, "a fresh link opens the page"
    return eng, client, job_id, page


def test_link_sets_a_strict_session_cookie_and_works_once(review_engine):
    _, client, job_id, _ = review_engine
    url = mint_link(client, job_id)
    assert url.startswith(client.base_url + "/review/open?code=")
    assert client.token not in url
    page = PageClient(client.base_url)
    status, headers, _ = page.open_link(url)
    assert status == 303
    assert headers["location"].endswith(f"/review/#job={job_id}")
    cookie = headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/review" in cookie
    assert "domain=" not in cookie  # host-only: bound to the 127.0.0.1 the link named
    assert page.request("GET", "/review/api/jobs")[0] == 200
    # the same link again: refused, and it mints no session
    again = PageClient(client.base_url)
    status, _, body = again.open_link(url)
    assert status == 403 and json.loads(body)["error"]["code"] == "link_used"
    assert again.cookie is None


def test_page_and_api_need_the_cookie(page):
    _, client, job_id, browser = page
    for path in (
        "/review/",
        "/review/static/review.js",
        "/review/api/jobs",
        f"/review/api/jobs/{job_id}",
        f"/review/api/jobs/{job_id}/audio",
    ):
        status, _, body = browser.request("GET", path, cookie=False)
        assert status == 401, path
        assert "new link" in json.loads(body)["error"]["message"]
    # the engine token is no key to the page
    status, _, _ = browser.request(
        "GET", "/review/api/jobs", cookie=False, headers={"Authorization": f"Bearer {client.token}"}
    )
    assert status == 401
    # a made-up session is no key either
    status, _, _ = browser.request(
        "GET", "/review/api/jobs", cookie=False, headers={"Cookie": "cb_review=forged"}
    )
    assert status == 401


def test_foreign_origins_are_refused(page):
    _, _, job_id, browser = page
    draft = {"cues": [], "base_version": 0}
    own = browser.base
    # writes need the page's own Origin, exactly
    for headers in (
        {},
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Origin": own.replace("127.0.0.1", "localhost")},
    ):
        status, _, _ = browser.request("PUT", f"/review/api/jobs/{job_id}/draft", draft, headers=headers)
        assert status == 403, headers
        status, _, _ = browser.request("POST", f"/review/api/jobs/{job_id}/approve", draft, headers=headers)
        assert status == 403, headers
    # reads from another site too (the browser says so with Sec-Fetch-Site / Origin)
    status, _, _ = browser.request("GET", "/review/api/jobs", headers={"Sec-Fetch-Site": "cross-site"})
    assert status == 403
    status, _, _ = browser.request("GET", "/review/api/jobs", headers={"Origin": "http://evil.example"})
    assert status == 403
    # and the token API still refuses every web origin
    status, _, _ = browser.request("POST", "/v1/review/links", {}, headers={"Origin": own}, cookie=True)
    assert status == 403
    # with its own Origin the write goes through
    status, _, body = browser.request(
        "PUT", f"/review/api/jobs/{job_id}/draft", draft, headers={"Origin": own}
    )
    assert status == 200, body


def test_every_page_response_carries_a_strict_csp(page):
    _, _, job_id, browser = page
    for path in ("/review/", "/review/static/review.js", f"/review/api/jobs/{job_id}", "/review/api/jobs"):
        status, headers, _ = browser.request("GET", path)
        assert status == 200, path
        csp = headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert headers["x-content-type-options"] == "nosniff"
    html = browser.request("GET", "/review/")[2].decode()
    assert (
        "<script>" not in html and "http://" not in html and "https://" not in html
    )  # no inline, nothing remote
    assert not re.search(r"\son[a-z]+\s*=", html)  # no inline event handlers


def test_files_come_only_from_the_job_folder(page, tmp_path):
    eng, client, job_id, browser = page
    own = {"Origin": browser.base}
    view = json.loads(browser.request("GET", f"/review/api/jobs/{job_id}")[2])
    status, _, body = browser.request(
        "POST", f"/review/api/jobs/{job_id}/approve", {"cues": view["cues"]}, headers=own
    )
    assert status == 201, body
    version = json.loads(body)
    secret = eng.config / "token"
    for name in (
        "../../../token",
        "..%2F..%2F..%2Ftoken",
        "%2e%2e%2f%2e%2e%2ftoken",
        ".review",
        "..",
        "/etc/passwd",
        "%2Fetc%2Fpasswd",
        "version.json",
    ):
        status, _, body = browser.request("GET", f"/review/api/jobs/{job_id}/versions/1/files/{name}")
        assert status in (404, 400), (name, status)
        assert secret.read_text().strip().encode() not in body
        status, _, _ = client_get(client, f"/v1/jobs/{job_id}/versions/1/files/{name}")
        assert status in (404, 400), (name, status)
    for name in ("../jobs.sqlite3", "..%2Fjobs.sqlite3", "review.js%2F..%2F..%2Freview.py", "index.html"):
        status, _, _ = browser.request("GET", f"/review/static/{name}")
        assert status == 404, name
    for bad_id in ("..", "..%2F..%2Ftoken", "0" * 32):
        status, _, _ = browser.request("GET", f"/review/api/jobs/{bad_id}/audio")
        assert status in (404, 400), bad_id
    assert version["files"]
    status, _, body = browser.request(
        "GET", f"/review/api/jobs/{job_id}/versions/1/files/{version['files'][0]}"
    )
    assert status == 200 and body


def client_get(client, path):
    import urllib.error
    import urllib.request

    req = urllib.request.Request(client.base_url + path, headers={"Authorization": f"Bearer {client.token}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_minting_a_link_needs_the_token(review_engine):
    _, client, job_id, _ = review_engine
    anon = PageClient(client.base_url)
    status, _, _ = anon.request("POST", "/v1/review/links", {"job_id": job_id})
    assert status == 401
    from captionbridge.plugin.service.client import EngineError

    with pytest.raises(EngineError) as err:
        mint_link(client, "f" * 32)
    assert err.value.status == 404


def test_the_session_is_bound_to_the_host_it_was_opened_on(page):
    _, client, job_id, browser = page
    assert browser.request("GET", "/review/api/jobs")[0] == 200
    other = PageClient(browser.base.replace("127.0.0.1", "localhost"))
    other.cookie = browser.cookie  # the same cookie, sent to another host name of the engine
    assert other.request("GET", "/review/api/jobs")[0] == 401
    # a Host the engine does not answer to is refused before anything else
    status, _, body = browser.request("GET", "/review/api/jobs", headers={"Host": "attacker.example"})
    assert status == 403 and json.loads(body)["error"]["code"] == "forbidden_host"


def test_a_link_followed_from_another_web_page_is_refused_and_stays_unused(review_engine):
    _, client, job_id, _ = review_engine
    url = mint_link(client, job_id)
    browser = PageClient(client.base_url)
    path = url[len(client.base_url) :]
    status, _, body = browser.request("GET", path, cookie=False, headers={"Sec-Fetch-Site": "cross-site"})
    assert status == 403 and "address bar" in json.loads(body)["error"]["message"]
    assert browser.open_link(url)[0] == 303  # refused before it was used: the user can still open it
