"""Directory login against a real slapd: service bind, user search by any login attribute
(escaped), bind as the user, groups by search; every refusal clear and uniform."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from orchardist.enroll.directory import (
    AccountLockedError,
    Directory,
    DirectoryConfig,
    DirectoryUnavailableError,
    InvalidCredentialsError,
)
from orchardist.pki.ca import generate_ca
from tests.directory.samba import ADMIN_PASSWORD as AD_ADMIN_PASSWORD
from tests.directory.samba import ADMIN_UPN, SambaDc
from tests.directory.samba import PASSWORDS as AD_PASSWORDS
from tests.directory.slapd import (
    BASE,
    PASSWORDS,
    SERVICE_DN,
    SERVICE_PASSWORD,
    Slapd,
)
from tests.server import free_port

pytestmark = pytest.mark.anyio


def _directory(slapd: Slapd, **changes: object) -> Directory:
    config = DirectoryConfig(url=slapd.url, base_dn=BASE, bind_dn=SERVICE_DN,
                             bind_password=SERVICE_PASSWORD)  # fmt: skip
    return Directory(DirectoryConfig(**{**config.__dict__, **changes}))  # type: ignore[arg-type]


@pytest.mark.parametrize("login", ["alice", "alice@example.com"])
async def test_alice_signs_in_with_uid_or_mail(slapd: Slapd, login: str) -> None:
    user = await _directory(slapd).authenticate(login, PASSWORDS["alice"])
    assert user.dn == f"uid=alice,ou=people,{BASE}"
    assert (user.display_name, user.email) == ("Alice Liddell", "alice@example.com")
    assert user.groups == ("sales", "staff")


@pytest.mark.parametrize(
    ("login", "password"),
    [
        ("alice", "wrong"),  # wrong password
        ("nobody", "whatever"),  # unknown user: the same message
        ("*)(uid=*", "alice-password"),  # LDAP injection finds nobody
        ("*", "alice-password"),
        ("alice)(|(uid=*", "x"),
    ],
)
async def test_refusals_look_alike(slapd: Slapd, login: str, password: str) -> None:
    with pytest.raises(InvalidCredentialsError, match="unknown user or wrong password"):
        await _directory(slapd).authenticate(login, password)


async def test_an_empty_password_never_reaches_the_directory(slapd: Slapd) -> None:
    # A simple bind with a DN and no password is an unauthenticated bind that succeeds.
    with pytest.raises(InvalidCredentialsError, match="enter your user name and password"):
        await _directory(slapd).authenticate("alice", "")


async def test_a_wrong_service_account_is_named(slapd: Slapd) -> None:
    with pytest.raises(DirectoryUnavailableError, match="service account"):
        await _directory(slapd, bind_password="nope").authenticate("alice", PASSWORDS["alice"])


async def test_an_unreachable_directory_is_named(tmp_path: Path) -> None:
    config = DirectoryConfig(url=f"ldap://127.0.0.1:{free_port()}", base_dn=BASE,
                             timeout_seconds=2)  # fmt: skip
    with pytest.raises(DirectoryUnavailableError, match="cannot reach the directory"):
        await Directory(config).authenticate("alice", "x")


@pytest.mark.parametrize("how", ["ldaps", "start_tls"])
async def test_tls_with_the_directorys_ca(slapd: Slapd, how: str) -> None:
    url = slapd.ldaps_url if how == "ldaps" else slapd.url
    directory = _directory(slapd, url=url, start_tls=how == "start_tls", ca_file=slapd.ca_file)
    user = await directory.authenticate("bob", PASSWORDS["bob"])
    assert user.groups == ("staff",)


async def test_tls_refuses_a_server_it_cannot_verify(slapd: Slapd, tmp_path: Path) -> None:
    other = tmp_path / "other-ca.pem"
    other.write_bytes(generate_ca("Other CA", "x")[0].public_bytes(serialization.Encoding.PEM))
    directory = _directory(slapd, url=slapd.ldaps_url, ca_file=other)
    with pytest.raises(DirectoryUnavailableError):
        await directory.authenticate("bob", PASSWORDS["bob"])


async def test_a_locked_account_is_named(slapd: Slapd) -> None:
    with pytest.raises(AccountLockedError, match="locked"):
        await _directory(slapd).authenticate("carol", PASSWORDS["carol"])


def _ad(samba: SambaDc, **changes: object) -> Directory:
    config = DirectoryConfig(url=samba.ldaps_url, base_dn=samba.base, bind_dn=ADMIN_UPN,
                             bind_password=AD_ADMIN_PASSWORD, ca_file=samba.ca_file,
                             active_directory=True)  # fmt: skip
    return Directory(DirectoryConfig(**{**config.__dict__, **changes}))  # type: ignore[arg-type]


@pytest.mark.parametrize("how", ["ldaps", "start_tls"])
async def test_active_directory_user_signs_in_with_a_upn(samba: SambaDc, how: str) -> None:
    directory = _ad(samba) if how == "ldaps" else _ad(samba, url=samba.ldap_url, start_tls=True)
    user = await directory.authenticate("alice@example.test", AD_PASSWORDS["alice"])
    assert user.dn == f"CN=Alice Liddell,CN=Users,{samba.base}"
    assert (user.display_name, user.email, user.groups) == (
        "Alice Liddell", "alice@example.test", ("sales",)
    )  # fmt: skip
    assert (await directory.authenticate("alice", AD_PASSWORDS["alice"])).groups == ("sales",)


async def test_active_directory_refusals(samba: SambaDc) -> None:
    directory = _ad(samba)
    with pytest.raises(InvalidCredentialsError):
        await directory.authenticate("alice@example.test", "wrong")
    with pytest.raises(InvalidCredentialsError):
        await directory.authenticate("*)(sAMAccountName=*", "x")
    with pytest.raises(AccountLockedError):  # disabled in AD: userAccountControl
        await directory.authenticate("dave", AD_PASSWORDS["dave"])


async def test_lookup_without_a_password_for_invitations(slapd: Slapd) -> None:
    found = await _directory(slapd).lookup("alice@example.com")
    assert found is not None
    assert found.groups == ("sales", "staff")
    assert await _directory(slapd).lookup("nobody") is None
    assert await _directory(slapd).lookup("*") is None
