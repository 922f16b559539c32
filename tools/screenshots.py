"""Render the enrollment site's three pages (the HTML the server sends, from
orchardist.web.enroll_pages) in a phone-sized Debian Chromium and save them as PNGs in
docs/. Run with `make screenshots`."""

import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parents[1] / "docs"
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
from playwright.sync_api import sync_playwright
from orchardist.web import enroll_pages as pages

org = "Example Corp"
shots = {
    "enroll-sign-in.png": pages.sign_in(org),
    "enroll-review.png": pages.confirm(org, "Alice Liddell", "TOKEN", ["Sales Wi-Fi"]),
    # Without its refresh to the profile download, which set_content cannot follow.
    "enroll-done.png": pages.done(org, "/enroll/profile?session=TOKEN").replace(
        '<meta http-equiv=refresh content="1;url=/enroll/profile?session=TOKEN">', ""
    ),
}
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium",
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
    page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    for name, html in shots.items():
        page.set_content(html)
        page.screenshot(path=str(DOCS / name), full_page=True)
    browser.close()
print("ok")
