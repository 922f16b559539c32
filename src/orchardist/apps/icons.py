"""Finding an app's icon in its bundle: the largest PNG that Info.plist lists.

Info.plist names icons, not files, in several places (Apple, "CFBundleIcons"):
`CFBundleIcons.CFBundlePrimaryIcon.CFBundleIconFiles` and the same under
`CFBundleIcons~ipad` (iOS 5+, what Xcode writes today beside the asset catalog), the older
top-level `CFBundleIconFiles` (iOS 3.2+) and `CFBundleIconFile` (one name, before 3.2).
A name such as "AppIcon60x60" stands for the files the device would try:
`AppIcon60x60.png`, `AppIcon60x60@2x.png`, `AppIcon60x60@3x.png`, each also with `~ipad`
(or `~iphone`). When nothing is listed, `AppIcon*.png` and `Icon*.png` at the bundle's top
are tried, as iOS falls back to `Icon.png`.

Of the files found, the one with the most pixels wins (read from each PNG's header, CgBI
or not, without decoding), and only that one is read whole and converted to a standard PNG.
Icons inside the compiled asset catalog (`Assets.car`) are not extracted: Xcode also copies
the app icon's sizes as loose PNGs into the bundle, which is what this reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from orchardist.apps.cgbi import PngError, normalize_png, png_size
from orchardist.apps.safezip import IpaError

if TYPE_CHECKING:
    from orchardist.apps.safezip import SafeZip

_HEADER_BYTES = 64  # the signature, a CgBI chunk (16) and IHDR (25) fit in 49
_SUFFIXES = r"(?:@[23]x)?(?:~ipad|~iphone)?\.png"
_FALLBACK = re.compile(r"(?:AppIcon|Icon)[^/]*\.png")


@dataclass(frozen=True)
class Icon:
    png: bytes  # a standard PNG
    source: str  # the archive member it came from


def largest_icon(
    archive: SafeZip, app_dir: str, info: Mapping[str, Any], warnings: list[str]
) -> Icon | None:
    """The bundle's largest listed icon as a standard PNG, or None (a reason appended to
    `warnings` when an icon was listed or found but could not be used)."""
    names = list(listed_names(info))
    candidates = _candidates(set(archive.members), app_dir, names)
    problems: list[str] = []
    sized: list[tuple[int, int, str]] = []
    for name in candidates:
        try:
            width, height = png_size(archive.read_head(name, _HEADER_BYTES))
        except (PngError, IpaError) as exc:
            problems.append(f"icon {_base(name)} is not a PNG: {exc}")
            continue
        sized.append((width * height, archive.members[name].file_size, name))
    for _, _, name in sorted(sized, reverse=True):
        try:
            data = archive.read(name, archive.limits.max_icon, f"icon {_base(name)}")
            return Icon(png=normalize_png(data), source=name)
        except (PngError, IpaError) as exc:
            problems.append(f"icon {_base(name)} cannot be shown: {exc}")
    if not candidates and names:
        problems.append(f"Info.plist names the icon {names[0]!r} but the bundle has no such PNG")
    elif not candidates:
        problems.append("Info.plist names no icon")
    warnings.extend(problems)
    warnings.append("the app has no icon to show: an admin may upload one")
    return None


def _base(name: str) -> str:
    return name.rsplit("/", 1)[-1]


def listed_names(info: Mapping[str, Any]) -> Iterator[str]:
    """Icon names in the order Info.plist gives them (duplicates possible)."""
    for key in ("CFBundleIcons", "CFBundleIcons~ipad"):
        icons = info.get(key)
        primary = icons.get("CFBundlePrimaryIcon") if isinstance(icons, dict) else None
        if isinstance(primary, dict):
            yield from _strings(primary.get("CFBundleIconFiles"))
    yield from _strings(info.get("CFBundleIconFiles"))
    yield from _strings([info.get("CFBundleIconFile")])


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, list):
        yield from (item for item in value if isinstance(item, str) and item)


def _candidates(members: set[str], app_dir: str, names: list[str]) -> list[str]:
    """Top-level files of the bundle that the listed names stand for."""
    prefix = f"{app_dir}/"
    top_level = sorted(
        name[len(prefix) :]
        for name in members
        if name.startswith(prefix) and "/" not in name[len(prefix) :]
    )
    if names:
        stems = {name.removesuffix(".png") for name in names}
        pattern = re.compile("|".join(re.escape(stem) for stem in stems))
        wanted = re.compile(f"(?:{pattern.pattern}){_SUFFIXES}")
    else:
        wanted = _FALLBACK
    return [prefix + name for name in top_level if wanted.fullmatch(name)]
