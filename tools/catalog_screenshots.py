"""Render the app catalog's pages (the HTML the server sends, from
orchardist.web.catalog_pages, with /apps/catalog.css inlined and the icons as data: URLs,
since set_content has no server behind it) in a phone-sized Debian Chromium, and save
them as docs/catalog-sign-in.png and docs/catalog-list.png. The app icons are drawn here
with Pillow (in the server they come from each .ipa). Run with `make screenshots`."""

import base64
import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
sys.path.insert(0, str(ROOT / "src"))
from PIL import Image, ImageDraw
from playwright.sync_api import sync_playwright

from orchardist.web import catalog_pages as pages

ORG, TITLE = "Example Corp", "App Catalog"
LINK = "itms-services://?action=download-manifest&url=https%3A%2F%2Fmdm.example.com%2F…"


def icon(color: tuple[int, int, int], letter: str) -> str:
    image = Image.new("RGB", (120, 120), color)
    ImageDraw.Draw(image).text((42, 30), letter, fill="white", font_size=56)
    png = io.BytesIO()
    image.save(png, "PNG")
    return "data:image/png;base64," + base64.b64encode(png.getvalue()).decode()


def inlined(html: str) -> str:
    return html.replace('<link rel=stylesheet href="/apps/catalog.css">',
                        f"<style>{pages.STYLE}</style>")


apps = [
    pages.ListedApp("Expenses", "com.example.expenses", "2.1 (57)", 14_200_000,
                    "Photograph a receipt, claim it, and see when it is paid.",
                    icon((52, 199, 89), "E"), LINK),
    pages.ListedApp("Field Service", "com.example.field", "4.0 (112)", 48_900_000,
                    "Today's visits, parts and signatures, offline too.",
                    icon((255, 149, 0), "F"), LINK),
]
shots = {
    "catalog-sign-in.png": pages.sign_in(TITLE, ORG),
    "catalog-list.png": pages.catalog(TITLE, ORG, "alice", apps, "TOKEN",
                                      device="Alice's iPhone"),
}
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path="/usr/bin/chromium",
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
    page = browser.new_page(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    for name, html in shots.items():
        page.set_content(inlined(html))
        page.screenshot(path=str(DOCS / name), full_page=True)
    browser.close()
print("ok")
