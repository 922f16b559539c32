"""Where the master key comes from: a file in the data dir (mode 0600, the default), a value
(an environment variable), or a command that prints it (a key-management service's client).

All three give the same text: base64 keys, one a line or separated by spaces, the current
key first and keys still being rotated away after it; `#` starts a comment.
"""

from __future__ import annotations

import base64
import binascii
import os
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from orchardist.keys.master import MasterKeyError, MasterKeys

if TYPE_CHECKING:
    from orchardist.config import Settings

KEY_FILE_NAME = "master.key"
_HEADER = (
    "# Orchardist master keys (base64): the first seals, the others only open what they\n"
    "# sealed until `orchardist keys rotate` is done. Losing this file loses the secrets.\n"
)


def parse_keys(text: str, origin: str) -> MasterKeys:
    words = [w for line in text.splitlines() for w in line.split("#", 1)[0].split()]
    try:
        keys = tuple(base64.b64decode(word, validate=True) for word in words)
        return MasterKeys(keys)
    except (binascii.Error, MasterKeyError) as exc:
        raise MasterKeyError(f"{origin}: not base64 master keys ({exc})") from None


def format_keys(keys: MasterKeys) -> str:
    return _HEADER + "".join(base64.b64encode(key).decode() + "\n" for key in keys.keys)


@dataclass(frozen=True)
class KeySource:
    """Exactly one of the three is used: `value`, then `command`, then `file`."""

    file: Path
    value: str | None = None
    command: str | None = None

    @property
    def writable(self) -> bool:
        """Only the file is Orchardist's to write (generate, rotate)."""
        return self.value is None and self.command is None

    def describe(self) -> str:
        if self.value is not None:
            return "the ORCHARDIST_MASTER_KEY setting"
        if self.command is not None:
            return f"the master_key_command ({self.command.split()[0]})"
        return str(self.file)

    def load(self, *, create: bool = False) -> MasterKeys:
        """The keys; with `create`, a missing file is made with a new key (mode 0600)."""
        if self.value is not None:
            return parse_keys(self.value, self.describe())
        if self.command is not None:
            return parse_keys(_run(self.command), self.describe())
        try:
            return parse_keys(self.file.read_text(encoding="ascii"), str(self.file))
        except FileNotFoundError:
            if not create:
                raise MasterKeyError(
                    f"no master key at {self.file}: restore it from a backup, or run "
                    "`orchardist init` on a new data dir"
                ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise MasterKeyError(f"cannot read {self.file}: {exc}") from None
        keys = MasterKeys.generate()
        self.save(keys)
        return keys

    def save(self, keys: MasterKeys) -> None:
        """Replace the key file atomically (a crash leaves the old file or the new one)."""
        if not self.writable:
            raise MasterKeyError(f"{self.describe()} is not a file Orchardist writes")
        self.file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        partial = self.file.with_name(self.file.name + ".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as handle:
            handle.write(format_keys(keys))
            handle.flush()
            os.fsync(handle.fileno())
        partial.replace(self.file)


def _run(command: str) -> str:
    try:
        done = subprocess.run(  # noqa: S603  # the admin's own configured command
            shlex.split(command), capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise MasterKeyError(f"master_key_command failed: {exc}") from None
    if done.returncode != 0:
        raise MasterKeyError(
            f"master_key_command exited {done.returncode}: {done.stderr.strip()[:200]}"
        )
    return done.stdout


def key_source(settings: Settings) -> KeySource:
    """Where the master key comes from: master_key, master_key_command or the file. Here,
    not in wiring: commands that only open key files (`ca export`, `keys passphrase`, init)
    need not import the whole object graph (a third of a second) to find the key."""
    value = settings.master_key.get_secret_value() if settings.master_key else None
    file = settings.data_dir / settings.master_key_file
    return KeySource(file, value=value, command=settings.master_key_command)
