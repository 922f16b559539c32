"""The public address: `init --public-url` sets what profiles and links name, `serve` warns
when it listens elsewhere, and `simulate` names the address it could not reach."""

from __future__ import annotations

import json
import plistlib
import subprocess
import tomllib
from pathlib import Path

from tests.server import ORCHARDIST, free_port, orchardist, running_server


def _profile_urls(data_dir: Path, tmp_path: Path) -> list[str]:
    profile = tmp_path / "plain.mobileconfig"
    orchardist(data_dir, "enrollment-profile", "--unsigned", "-o", str(profile))
    _, scep, mdm = plistlib.loads(profile.read_bytes())["PayloadContent"]
    return [scep["PayloadContent"]["URL"], mdm["ServerURL"], mdm["CheckInURL"]]


def test_init_public_url_is_what_profiles_and_links_name(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    url = "https://mdm.example.test:9443"
    made = json.loads(
        orchardist(
            data_dir, "init", "--hostname", "mdm.example.test", "--public-url", url, "--json"
        )
    )
    assert made["public_url"] == url
    config = tomllib.loads((data_dir / "orchardist.toml").read_text())
    assert config == {"hostname": "mdm.example.test", "public_url": url}
    assert _profile_urls(data_dir, tmp_path) == [
        f"{url}/scep", f"{url}/mdm/connect", f"{url}/mdm/checkin",
    ]  # fmt: skip
    link = json.loads(orchardist(data_dir, "enroll", "token", "--json"))["url"]
    assert link.startswith(f"{url}/mdm/enroll?token=")
    # Re-running init without --public-url keeps the address given before.
    orchardist(data_dir, "init", "--hostname", "mdm.example.test")
    assert tomllib.loads((data_dir / "orchardist.toml").read_text())["public_url"] == url


def test_without_public_url_profiles_name_hostname_and_8443(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    made = json.loads(orchardist(data_dir, "init", "--hostname", "mdm.example.test", "--json"))
    assert made["public_url"] == "https://mdm.example.test:8443"
    assert _profile_urls(data_dir, tmp_path)[0] == "https://mdm.example.test:8443/scep"


def test_init_refuses_a_public_url_that_is_not_one(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    done = subprocess.run(
        [*ORCHARDIST, "--data-dir", str(data_dir), "init", "--hostname", "h",
         "--public-url", "mdm.example.test:8443"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.splitlines()[0] == (
        "error: setting public_url (from the command line): expected a URL such as "
        "https://mdm.example.com:8443, got 'mdm.example.test:8443'"
    )
    assert not data_dir.exists()


def test_init_warns_when_the_certificate_does_not_name_the_public_host(tmp_path: Path) -> None:
    done = subprocess.run(
        [*ORCHARDIST, "--data-dir", str(tmp_path / "data"), "init", "--hostname", "internal.test",
         "--public-url", "https://mdm.example.test"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert "warning: the public URL's host mdm.example.test is not --hostname internal.test" in (
        done.stderr
    )


def _serve_log(data_dir: Path, *, http: bool, port: int | None = None) -> str:
    with running_server(data_dir, http=http, port=port):
        pass
    (log,) = data_dir.glob("serve-*.log")
    text = log.read_text()
    log.unlink()
    return text


def test_serve_warns_when_it_listens_on_another_port_than_profiles_name(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    orchardist(data_dir, "init", "--hostname", "localhost")
    port = free_port()
    log = _serve_log(data_dir, http=False, port=port)
    assert port != 8443
    assert (
        f"warning: serving on port {port}, but profiles and links name https://localhost:8443 "
        "(port 8443): devices will not reach this server there." in log
    )
    (logged,) = [json.loads(line) for line in log.splitlines() if '"public_port_mismatch"' in line]
    assert (logged["level"], logged["port"], logged["public_url"]) == (
        "warning",
        port,
        "https://localhost:8443",
    )
    # Behind a proxy (--http) the proxy owns the public port: no warning.
    assert "public_port_mismatch" not in _serve_log(data_dir, http=True)


def test_serve_is_quiet_on_the_port_profiles_name(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    port = free_port()
    public = f"https://localhost:{port}"
    orchardist(data_dir, "init", "--hostname", "localhost", "--public-url", public)
    log = _serve_log(data_dir, http=False, port=port)
    assert "public_port_mismatch" not in log
    assert "warning:" not in log  # nothing said to the admin
    logged = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    assert logged  # the server did log: nothing it logged was a warning
    assert [entry for entry in logged if entry.get("level") == "warning"] == []


def test_simulate_names_the_address_it_could_not_reach(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    nowhere = f"https://127.0.0.1:{free_port()}"  # nothing listens there
    orchardist(data_dir, "init", "--hostname", "localhost", "--public-url", nowhere)
    profile = tmp_path / "enroll.mobileconfig"
    orchardist(data_dir, "enrollment-profile", "-o", str(profile))
    done = subprocess.run(
        [*ORCHARDIST, "simulate", "--profile", str(profile)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 1
    assert f": cannot reach {nowhere}/scep: All connection attempts failed" in done.stderr
    assert "check that `orchardist serve` runs and listens at that address" in done.stderr
    assert "public_url" in done.stderr


def test_simulate_says_when_the_peers_feed_cannot_be_reached(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    orchardist(data_dir, "init", "--hostname", "localhost")
    profile = tmp_path / "enroll.mobileconfig"
    orchardist(data_dir, "enrollment-profile", "-o", str(profile))
    feed = f"127.0.0.1:{free_port()}"  # no peer feeds pushes there
    for address, said in ((feed, f"cannot reach the APNs peer's feed at {feed}"),
                          ("no-port", "--apns-feed wants HOST:PORT, not 'no-port'")):  # fmt: skip
        done = subprocess.run(
            [*ORCHARDIST, "simulate", "--profile", str(profile), "--apns-feed", address],
            capture_output=True, text=True, check=False, timeout=120,
        )  # fmt: skip
        assert done.returncode == 1, done.stderr
        assert said in done.stderr
        assert "start the peer with --feed-port first" in done.stderr
