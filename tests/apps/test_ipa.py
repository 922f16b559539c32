"""orchardist.apps.ipa: what an .ipa built like Xcode's says about its app, its icon and its
provisioning profile; bundles that are not apps are refused with a reason."""

from __future__ import annotations

import io
import plistlib
import random
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image

from orchardist.apps.checks import upload_verdict
from orchardist.apps.ipa import IpaError, IpaLimits, read_ipa
from tests.apps.factory import TEAM, TEAM_ID, build_ipa, build_mobileprovision, cgbi_png

NOW = datetime.now(UTC)
APP = "Payload/Expenses.app"


@pytest.mark.parametrize("binary_plist", [True, False])
def test_an_ipa_is_read(tmp_path: Path, binary_plist: bool) -> None:
    ipa = build_ipa(
        tmp_path / "Expenses.ipa",
        version="2.3.1",
        build="417",
        minimum_os="16.4",
        device_family=(1,),
        binary_plist=binary_plist,
    )
    app = read_ipa(ipa)
    assert app.bundle_id == "com.example.expenses"
    assert (app.short_version, app.build, app.version) == ("2.3.1", "417", "2.3.1")
    assert app.display_name == "Expenses"
    assert app.minimum_os == "16.4"
    assert app.device_family == (1,)
    assert app.app_dir == APP
    assert app.info["CFBundleExecutable"] == "Expenses"
    assert app.warnings == ()
    assert app.provisioning is not None
    assert app.provisioning.app_id == f"{TEAM_ID}.com.example.expenses"


def test_the_largest_listed_icon_is_converted(tmp_path: Path) -> None:
    app = read_ipa(build_ipa(tmp_path / "a.ipa"))
    assert app.icon_source == f"{APP}/AppIcon60x60@3x.png"  # 180 px beats @2x's 120 px
    assert app.icon_png is not None
    image = Image.open(io.BytesIO(app.icon_png))
    assert (image.size, image.mode) == ((180, 180), "RGBA")


def test_ipad_icons_count_and_the_largest_wins(tmp_path: Path) -> None:
    ipad = {"CFBundlePrimaryIcon": {"CFBundleIconFiles": ["AppIcon83.5x83.5"]}}
    ipa = build_ipa(
        tmp_path / "a.ipa",
        info_overrides={"CFBundleIcons~ipad": ipad},
        extra_members={f"{APP}/AppIcon83.5x83.5@2x~ipad.png": cgbi_png(200, 200)},
    )
    assert read_ipa(ipa).icon_source == f"{APP}/AppIcon83.5x83.5@2x~ipad.png"


def test_the_old_icon_keys_and_standard_pngs_are_read(tmp_path: Path) -> None:
    small, large = _standard_png(57), _standard_png(114)
    ipa = build_ipa(
        tmp_path / "a.ipa",
        icon=False,
        info_overrides={"CFBundleIconFile": "Icon.png"},
        extra_members={f"{APP}/Icon.png": small, f"{APP}/Icon@2x.png": large},
    )
    app = read_ipa(ipa)
    assert app.icon_source == f"{APP}/Icon@2x.png"
    assert app.icon_png == large  # already standard: unchanged


def test_an_app_without_an_icon_is_read_with_a_warning(tmp_path: Path) -> None:
    app = read_ipa(build_ipa(tmp_path / "a.ipa", icon=False))
    assert app.icon_png is None
    assert "Info.plist names no icon" in app.warnings
    assert any("an admin may upload one" in warning for warning in app.warnings)


def test_an_icon_that_is_not_a_png_is_a_warning_not_a_refusal(tmp_path: Path) -> None:
    ipa = build_ipa(
        tmp_path / "a.ipa",
        icon=False,
        info_overrides={"CFBundleIconFiles": ["Icon"]},
        extra_members={f"{APP}/Icon.png": b"GIF89a not a png at all"},
    )
    app = read_ipa(ipa)
    assert app.icon_png is None
    assert any("Icon.png is not a PNG" in warning for warning in app.warnings)


def test_names_fall_back_as_ios_does(tmp_path: Path) -> None:
    ipa = build_ipa(
        tmp_path / "a.ipa",
        info_overrides={
            "CFBundleDisplayName": None,
            "CFBundleShortVersionString": None,
            "UIDeviceFamily": 2,
        },
    )
    app = read_ipa(ipa)
    assert app.display_name == "Expenses"  # CFBundleName
    assert (app.short_version, app.build) == ("1", "1")  # CFBundleVersion for both
    assert app.device_family == (2,)


def test_a_seekable_file_object_is_read(tmp_path: Path) -> None:
    ipa = build_ipa(tmp_path / "a.ipa")
    with ipa.open("rb") as handle:
        assert read_ipa(handle).bundle_id == "com.example.expenses"


def test_a_big_ipa_is_streamed_not_held_in_memory(tmp_path: Path) -> None:
    ipa = build_ipa(tmp_path / "big.ipa", size_padding=64 * 1024 * 1024)
    tracemalloc.start()
    try:
        read_ipa(ipa)  # inflates (reads) every member, the 64 MiB one too
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024


def test_trusted_roots_reach_the_embedded_profile(tmp_path: Path) -> None:
    app = read_ipa(build_ipa(tmp_path / "a.ipa"), trusted_roots=[TEAM.ca_cert])
    assert app.provisioning is not None
    assert app.provisioning.signer_trusted


# --- refused ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"CFBundleIdentifier": None}, "no CFBundleIdentifier"),
        ({"CFBundleIdentifier": ""}, "no CFBundleIdentifier"),
        ({"CFBundleIdentifier": 42}, "no CFBundleIdentifier"),
        ({"CFBundleIdentifier": "com.example/../x"}, "is not a bundle id"),
        ({"CFBundleShortVersionString": None, "CFBundleVersion": None}, "no CFBundleShort"),
        ({"CFBundleDisplayName": ["a"]}, "CFBundleDisplayName is not a string"),
        ({"UIDeviceFamily": ["iPhone"]}, "UIDeviceFamily is not a list of numbers"),
    ],
)
def test_an_info_plist_without_what_an_app_needs_is_refused(
    tmp_path: Path, overrides: dict[str, object], reason: str
) -> None:
    with pytest.raises(IpaError, match=reason):
        read_ipa(build_ipa(tmp_path / "a.ipa", info_overrides=overrides))


@pytest.mark.parametrize(
    ("info", "reason"),
    [
        (b"this is not a property list", "Info.plist is not a valid property list"),
        (b"<?xml version='1.0'?><plist><dict><key>a</key>", "not a valid property list"),
        (b"bplist00\xff\xff\xff", "not a valid property list"),
        (plistlib.dumps(["a", "list"]), "Info.plist is not a dictionary"),
    ],
)
def test_a_malformed_info_plist_is_refused(tmp_path: Path, info: bytes, reason: str) -> None:
    ipa = _replace_info(tmp_path, info)
    with pytest.raises(IpaError, match=reason):
        read_ipa(ipa)


def test_an_xml_entity_in_info_plist_is_refused(tmp_path: Path) -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE plist [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b"<plist><dict><key>CFBundleIdentifier</key><string>&b;</string></dict></plist>"
    )
    with pytest.raises(IpaError, match="not a valid property list"):
        read_ipa(_replace_info(tmp_path, bomb))


def test_a_huge_info_plist_is_refused_unread(tmp_path: Path) -> None:
    padding = random.Random(13).randbytes(1_000_000).hex()  # barely compressible
    huge = plistlib.dumps({"CFBundleIdentifier": "com.example.x", "Padding": padding})
    with pytest.raises(IpaError, match=r"Info.plist is 2,0\d\d,\d\d\d bytes: at most 1,048,576"):
        read_ipa(_replace_info(tmp_path, huge))


def test_an_app_without_info_plist_is_refused(tmp_path: Path) -> None:
    ipa = build_ipa(tmp_path / "a.ipa")
    stripped = _rewrite(ipa, tmp_path / "b.ipa", drop=f"{APP}/Info.plist")
    with pytest.raises(IpaError, match=r"the app has no Info.plist"):
        read_ipa(stripped)


def test_a_zip_without_an_app_is_refused(tmp_path: Path) -> None:
    ipa = build_ipa(tmp_path / "a.ipa", extra_members={})
    moved = _rewrite(ipa, tmp_path / "b.ipa", rename=("Payload/", "Stuff/"))
    with pytest.raises(IpaError, match="no app inside"):
        read_ipa(moved)


def test_two_apps_are_refused(tmp_path: Path) -> None:
    ipa = build_ipa(tmp_path / "a.ipa", extra_members={"Payload/Other.app/Info.plist": b""})
    with pytest.raises(IpaError, match=r"more than one app inside: Expenses.app, Other.app"):
        read_ipa(ipa)


@pytest.mark.parametrize(
    ("profile", "reason"),
    [
        (b"garbage", "not a provisioning profile"),
        (
            build_mobileprovision().replace(b"Expenses In House", b"Expenses In Hoose"),
            "message digest mismatch",
        ),
    ],
)
def test_a_malformed_or_forged_embedded_profile_is_refused(
    tmp_path: Path, profile: bytes, reason: str
) -> None:
    with pytest.raises(IpaError, match=f"embedded.mobileprovision is refused: .*{reason}"):
        read_ipa(build_ipa(tmp_path / "a.ipa", provisioning=profile))


# --- what an upload does with a readable app (apps.checks) ---------------------------


def test_a_good_app_is_accepted_without_warnings(tmp_path: Path) -> None:
    verdict = upload_verdict(read_ipa(build_ipa(tmp_path / "a.ipa")), NOW)
    assert verdict.accepted
    assert verdict.warnings == ()


def test_an_expired_embedded_profile_is_refused(tmp_path: Path) -> None:
    expired = build_mobileprovision(expires_at=NOW - timedelta(days=3))
    app = read_ipa(build_ipa(tmp_path / "a.ipa", provisioning=expired))
    verdict = upload_verdict(app, NOW)
    assert not verdict.accepted
    (reason,) = verdict.refusals
    assert "expired 3 days ago" in reason
    assert "would not launch" in reason


def test_a_profile_for_another_app_is_refused(tmp_path: Path) -> None:
    other = build_mobileprovision(app_id=f"{TEAM_ID}.com.example.travel")
    verdict = upload_verdict(read_ipa(build_ipa(tmp_path / "a.ipa", provisioning=other)), NOW)
    (reason,) = verdict.refusals
    assert "for app id ABCDE12345.com.example.travel" in reason
    assert "does not cover the bundle id com.example.expenses" in reason


def test_a_wildcard_profile_is_accepted(tmp_path: Path) -> None:
    wildcard = build_mobileprovision(app_id=f"{TEAM_ID}.com.example.*")
    app = read_ipa(build_ipa(tmp_path / "a.ipa", provisioning=wildcard))
    assert upload_verdict(app, NOW).accepted


def test_warnings_for_a_profile_expiring_soon_a_device_list_and_no_profile(
    tmp_path: Path,
) -> None:
    soon = build_mobileprovision(expires_at=NOW + timedelta(days=10, hours=1), devices=["U1"])
    verdict = upload_verdict(read_ipa(build_ipa(tmp_path / "a.ipa", provisioning=soon)), NOW)
    assert verdict.accepted
    assert any("expires in 10 days" in warning for warning in verdict.warnings)
    assert any("lists 1 devices" in warning for warning in verdict.warnings)
    bare = upload_verdict(read_ipa(build_ipa(tmp_path / "b.ipa", provisioning=None)), NOW)
    assert bare.accepted
    assert any("no embedded.mobileprovision" in warning for warning in bare.warnings)


def test_limits_can_be_lowered(tmp_path: Path) -> None:
    with pytest.raises(IpaError, match=r"Info.plist is .* bytes: at most 100 are read"):
        read_ipa(build_ipa(tmp_path / "a.ipa"), IpaLimits(max_info_plist=100))


# --- helpers ----------------------------------------------------------------------------


def _standard_png(size: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGBA", (size, size), (200, 30, 30, 255)).save(buffer, "PNG")
    return buffer.getvalue()


def _replace_info(tmp_path: Path, info: bytes) -> Path:
    ipa = build_ipa(tmp_path / "a.ipa")
    return _rewrite(ipa, tmp_path / "b.ipa", replace={f"{APP}/Info.plist": info})


def _rewrite(
    source: Path,
    target: Path,
    *,
    drop: str | None = None,
    rename: tuple[str, str] | None = None,
    replace: dict[str, bytes] | None = None,
) -> Path:
    import zipfile

    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            if info.filename == drop:
                continue
            data = (replace or {}).get(info.filename, old.read(info))
            name = info.filename.replace(*rename, 1) if rename else info.filename
            new.writestr(name, data, zipfile.ZIP_DEFLATED)
    return target
