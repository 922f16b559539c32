"""The profile builder on the real app: every iOS payload type drawn from Apple's schema
with a label for every key, payloads added with the values kept, problems with their key
paths (whole page and htmx fragment), the XML preview, Save into the library (unchanged the
second time), and the builder refused to anyone but an admin, with nothing stored."""

from __future__ import annotations

import plistlib
import re
from collections.abc import Iterator
from html import unescape

import pytest

from orchardist.profiles.forms import FormField, item_fields, payload_forms
from orchardist.storage.audit import AuditQuery, Outcome
from tests.web.console import add_account, browser, signed_in
from tests.web.mdm_server import Server

pytestmark = pytest.mark.anyio
WIFI, PASSCODE = "com.apple.wifi.managed", "com.apple.mobiledevice.passwordpolicy"
SECRET = "builder-typed-secret-7"
NEW = "/console/profiles/new"


def _office(token: str, action: str, **more: str) -> dict[str, str]:
    return {
        "csrf_token": token,
        "action": action,
        "identifier": "com.example.office",
        "name": "Office",
        "organization": "Example Corp",
        "p0.type": WIFI,
        "p0.SSID_STR": "Office",
        "p0.EncryptionType": "WPA2",
        "p0.Password": SECRET,
        "p0.AutoJoin": "true",
        "p0.HIDDEN_NETWORK": "",
        "p1.type": PASSCODE,
        "p1.minLength": "6",
        **more,
    }


def _titles(fields: tuple[FormField, ...]) -> Iterator[tuple[str, str]]:
    """(key, title) of every key of Apple's schema the builder draws: nested keys of
    dictionaries and of the items of arrays of dictionaries too (an array of scalars is one
    textarea, its item no key of its own)."""
    for field in fields:
        yield field.key, field.title
        if field.type == "dictionary":
            yield from _titles(field.subfields)
        elif field.type == "array" and field.subfields and field.subfields[0].type == "dictionary":
            yield from _titles(item_fields(field))


async def test_every_payload_type_is_drawn_with_a_label_for_every_key(server: Server) -> None:
    await add_account(server, "ann", "admin")
    forms = payload_forms()
    assert len(forms) == 47
    async with browser(server) as client:
        token = await signed_in(client, "ann")
        empty = await client.get(NEW)
        for kind, form in forms.items():  # every type can be chosen
            assert f'<option value="{kind}">{form.title} ({kind})' in unescape(empty.text)
        fields = {f"p{n}.type": kind for n, kind in enumerate(forms)}
        page = await client.post(NEW, data={"csrf_token": token, "action": "check", **fields})
    assert page.status_code == 200
    html = unescape(page.text)
    labels = {
        unescape(re.sub(r'<span class="visually-hidden">.*?</span>', "", text))
        for text in re.findall(r"<label for=\"p\d+\.[^\"]+\">(.*?)</label>", page.text)
    }
    # a value's title is its input's label; a dictionary's, its <summary>; a key the form
    # cannot set is named in bold with where to set it
    for n, (kind, form) in enumerate(forms.items()):
        assert f"<legend>{form.title} (payloads[{n}])</legend>" in html
        for key, title in _titles(form.fields):
            if key != "ANY":
                assert (
                    title in labels
                    or f"<summary>{title} <code" in html
                    or f"<strong>{title}</strong>" in html
                ), (kind, key)
    # inputs by type: a number with its range, a select for allowed values and booleans
    assert re.search(
        r'id="p\d+\.minLength" name="p\d+\.minLength" type="number" value=""'
        r' placeholder="0" step="1" min="0" max="16"',
        page.text,
    )
    wifi = list(forms).index(WIFI)
    assert f'<select id="p{wifi}.EncryptionType"' in page.text
    assert '<option value="" selected>not set (default: yes)</option>' in page.text  # AutoJoin
    assert (
        f'type="password" value="" autocomplete="new-password" '
        f'aria-describedby="p{wifi}.Password-help"' in page.text
    )
    assert "Supervised devices only." in page.text


async def test_adding_payloads_keeps_what_was_typed(server: Server) -> None:
    await add_account(server, "ann", "admin")
    async with browser(server) as client:
        token = await signed_in(client, "ann")
        form = _office(token, "add", add_type=WIFI)
        added = await client.post(NEW, data=form)
        assert added.status_code == 200
        assert "<legend>Wi-Fi (payloads[2])</legend>" in added.text
        assert 'name="p0.SSID_STR" type="text" value="Office"' in added.text
        assert 'name="p1.minLength" type="number" value="6"' in added.text
        once = await client.post(NEW, data=_office(token, "add", add_type="com.apple.mdm"))
        again = await client.post(
            NEW,
            data={**_office(token, "add", add_type="com.apple.mdm"), "p2.type": "com.apple.mdm"},
        )
        assert "<legend>MDM (payloads[2])</legend>" in once.text
        assert "A profile holds one MDM payload: it has one already." in again.text
        removed = await client.post(NEW, data=_office(token, "remove-0"))
        assert "<legend>Passcode (payloads[0])</legend>" in removed.text
        assert 'name="p0.minLength" type="number" value="6"' in removed.text
        assert "Wi-Fi (payloads" not in removed.text


async def test_check_names_each_problem_by_its_key_path(server: Server) -> None:
    await add_account(server, "ann", "admin")
    bad = {"p0.SSID_STR": "", "p1.minLength": "99", "p1.maxFailedAttempts": "eleven"}
    async with browser(server) as client:
        token = await signed_in(client, "ann")
        fragment = await client.post(
            f"{NEW}/check", data=_office(token, "check", **bad), headers={"HX-Request": "true"}
        )
        page = await client.post(NEW, data=_office(token, "check", **bad))
        fixed = await client.post(f"{NEW}/check", data=_office(token, "check"))
        schema = await client.post(
            f"{NEW}/check",
            data=_office(token, "check", **{"p0.SSID_STR": "", "p1.minLength": "99"}),
        )
        missing = await client.post(f"{NEW}/check", data={"csrf_token": token})
    assert "<html" not in fragment.text  # only the problems and the preview
    assert unescape(re.sub("<[^>]+>", "", fragment.text)).count("payloads[") == 1
    assert (
        '<a href="#p1.maxFailedAttempts">payloads[1].maxFailedAttempts: '
        "&#39;eleven&#39; is not a whole number</a>" in fragment.text
    )
    text = unescape(schema.text)
    assert "payloads[0].SSID_STR: is required" in text
    assert "payloads[1].minLength: must be at most 16" in text
    assert "builder-preview" not in schema.text  # nothing to preview while it fails
    # the whole page marks the field, beside it
    assert 'id="p1.maxFailedAttempts-problem-1">&#39;eleven&#39; is not a whole number' in page.text
    assert (
        'aria-describedby="p1.maxFailedAttempts-help p1.maxFailedAttempts-problem-1" '
        'aria-invalid="true"' in page.text
    )
    assert "identifier: required" in missing.text
    assert "payloads: add at least one payload" in missing.text
    preview = unescape(fixed.text)
    assert "No problems: ready to save." in preview
    xml = preview.split('<pre id="builder-preview">')[1].split("</pre>")[0]
    profile = plistlib.loads(xml.encode())
    wifi, passcode = profile["PayloadContent"]
    assert (wifi["SSID_STR"], wifi["EncryptionType"], wifi["Password"]) == (
        "Office",
        "WPA2",
        SECRET,
    )
    assert (passcode["PayloadType"], passcode["minLength"]) == (PASSCODE, 6)
    assert profile["PayloadOrganization"] == "Example Corp"


async def test_save_stores_a_version_and_the_same_again_changes_nothing(server: Server) -> None:
    await add_account(server, "ann", "admin")
    await add_account(server, "vera", "viewer")
    hostile = '<script>alert("x")</script>'
    async with browser(server) as client:
        token = await signed_in(client, "ann")
        saved = await client.post(NEW, data=_office(token, "save", name=hostile))
        assert (saved.status_code, saved.headers["location"]) == (
            303,
            "/console/profiles/com.example.office?done=saved&version=1",
        )
        same = await client.post(NEW, data=_office(token, "save", name=hostile))
        assert same.headers["location"].endswith("?done=unchanged&version=1")
        changed = await client.post(
            NEW, data=_office(token, "save", name=hostile, **{"p1.minLength": "8"})
        )
        assert changed.headers["location"].endswith("?done=saved&version=2")
        refused = await client.post(NEW, data=_office(token, "save", **{"p1.minLength": "99"}))
        assert refused.status_code == 422
        assert "Not saved: fix the problems below first." in refused.text
    versions = await server.services.storage.profile_versions("com.example.office")
    assert [v.version for v in versions] == [1, 2]
    assert plistlib.loads(versions[1].body)["PayloadContent"][1]["minLength"] == 8
    async with browser(server) as client:
        await signed_in(client, "vera")
        pages = [
            await client.get(path)
            for path in (
                "/console/profiles",
                "/console/profiles/com.example.office",
                "/console/profiles/com.example.office/status",
            )
        ]
    assert [p.status_code for p in pages] == [200, 200, 200]
    for page in pages:
        assert SECRET not in page.text  # the typed password: on no page a viewer sees
        assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in pages[0].text
    entries = await server.services.storage.audit_entries(AuditQuery(action="profile.upload"))
    assert [
        (e.outcome.value, e.detail.get("version"), e.detail.get("unchanged"))
        for e in reversed(entries)
    ] == [("ok", 1, False), ("ok", 1, True), ("ok", 2, False)]
    assert SECRET not in repr(entries)


async def test_only_admins_build_and_refusals_store_nothing(server: Server) -> None:
    await add_account(server, "olga", "operator")
    await add_account(server, "vera", "viewer")
    async with browser(server) as client:
        token = await signed_in(client, "olga")
        assert (await client.get(NEW)).status_code == 403
        forged = await client.post(NEW, data=_office(token, "save"))
        assert (forged.status_code, "that needs admin" in forged.text) == (403, True)
        check = await client.post(f"{NEW}/check", data=_office(token, "check"))
        assert check.status_code == 403
        assert SECRET not in forged.text + check.text
        library = await client.get("/console/profiles")
        assert 'href="/console/profiles/new"' not in library.text
    async with browser(server) as client:
        token = await signed_in(client, "vera")
        assert (await client.post(NEW, data=_office(token, "save"))).status_code == 403
    await add_account(server, "ann", "admin")
    async with browser(server) as client:
        await signed_in(client, "ann")
        unsigned = await client.post(
            NEW, data={k: v for k, v in _office("", "save").items() if k != "csrf_token"}
        )
        assert (unsigned.status_code, "could not be verified" in unsigned.text) == (403, True)
    assert await server.services.storage.list_profiles() == []
    denied = await server.services.storage.audit_entries(AuditQuery(outcome=Outcome.DENIED))
    assert {(e.actor, e.action, tuple(e.targets)) for e in denied} >= {
        ("olga", "profiles.edit", (NEW,)),
        ("olga", "profiles.edit", (f"{NEW}/check",)),
        ("vera", "profiles.edit", (NEW,)),
    }
