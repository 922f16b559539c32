"""`orchardist directory test USER` against slapd, configured in orchardist.toml."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.directory.slapd import BASE, PASSWORDS, SERVICE_DN, SERVICE_PASSWORD, running_slapd
from tests.server import ORCHARDIST, orchardist


def _run(data_dir: Path, user: str, password: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*ORCHARDIST, "--data-dir", str(data_dir), "directory", "test", user,
         "--password-stdin", "--json"],
        input=password + "\n", capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip


def test_directory_test_signs_in_and_explains_refusals(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    orchardist(data_dir, "init", "--hostname", "localhost")
    unconfigured = _run(data_dir, "alice", "x")
    assert (unconfigured.returncode, "no directory configured" in unconfigured.stderr) == (1, True)
    with running_slapd(tmp_path / "slapd") as slapd:
        with (data_dir / "orchardist.toml").open("a") as config:
            config.write(
                f'\n[directory]\nurl = "{slapd.url}"\nbase_dn = "{BASE}"\n'
                f'bind_dn = "{SERVICE_DN}"\nbind_password = "{SERVICE_PASSWORD}"\n'
            )
        ok = _run(data_dir, "alice@example.com", PASSWORDS["alice"])
        assert ok.returncode == 0, ok.stderr
        assert json.loads(ok.stdout) == {
            "dn": f"uid=alice,ou=people,{BASE}",
            "name": "Alice Liddell",
            "email": "alice@example.com",
            "groups": ["sales", "staff"],
        }
        wrong = _run(data_dir, "alice", "nope")
        assert (wrong.returncode, "unknown user or wrong password" in wrong.stderr) == (1, True)
        assert PASSWORDS["alice"] not in wrong.stderr + wrong.stdout
