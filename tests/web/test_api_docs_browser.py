"""/api/v1/docs in headless Debian Chromium against a running server: Swagger UI renders
every operation of the OpenAPI document, and the browser asks nothing of another origin.
`make test` installs Chromium (Makefile DEBS) and Playwright (the dev extra)."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from playwright import sync_api as playwright

from tests.server import orchardist, running_server

# Never skipped: `make test` installs Debian's Chromium (Makefile DEBS) and Playwright.
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def test_swagger_ui_renders_every_operation_from_this_server_alone(tmp_path: Path) -> None:
    assert Path(CHROMIUM).exists(), "no Chromium: `make test` installs Debian's"
    data_dir = tmp_path / "data"
    orchardist(data_dir, "init", "--hostname", "localhost")
    with running_server(data_dir, http=True) as base:
        document = httpx.get(f"{base}/api/v1/openapi.json").json()
        operations = sum(len(methods) for methods in document["paths"].values())
        asked, problems = _render(f"{base}/api/v1/docs", operations)
    origin = urlsplit(base).netloc
    assert asked
    assert {urlsplit(url).netloc for url in asked} == {origin}, asked
    assert problems == []


def _render(url: str, operations: int) -> tuple[list[str], list[str]]:
    """Every URL the page asked for, and the console errors it logged (a refused asset or
    a Content-Security-Policy violation would be one)."""
    asked: list[str] = []
    problems: list[str] = []
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            page = browser.new_page()
            page.on("request", lambda request: asked.append(request.url))
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.goto(url)
            page.wait_for_selector(".opblock", timeout=20_000)
            rendered = page.locator(".opblock").count()
            assert rendered == operations, (rendered, operations)
            assert page.locator(".opblock-summary-path", has_text="/api/v1/devices").count()
            assert page.locator("text=Authorize").count()  # the bearer token can be entered
        finally:
            browser.close()
    return [u for u in asked if not u.startswith("data:")], problems
