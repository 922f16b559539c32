"""Draw the app catalog's icon — src/orchardist/apps/data/catalog-icon.png, the Web Clip's
Icon and the catalog page's apple-touch-icon — with Pillow. Run once by hand when it
should change (`python tools/catalog_icon.py`); the PNG is committed. 180 x 180 pixels,
opaque (iOS rounds the corners itself): four white tiles, an app grid, on blue."""

from pathlib import Path

from PIL import Image, ImageDraw

SIZE, BLUE, WHITE = 180, (0, 122, 255), (255, 255, 255)
TARGET = Path(__file__).resolve().parents[1] / "src/orchardist/apps/data/catalog-icon.png"

image = Image.new("RGB", (SIZE, SIZE), BLUE)
draw = ImageDraw.Draw(image)
tile, gap = 50, 16
start = (SIZE - 2 * tile - gap) // 2
for row in range(2):
    for column in range(2):
        left, top = start + column * (tile + gap), start + row * (tile + gap)
        draw.rounded_rectangle((left, top, left + tile, top + tile), radius=12, fill=WHITE)
image.save(TARGET, optimize=True)
print(TARGET, TARGET.stat().st_size, "bytes")
