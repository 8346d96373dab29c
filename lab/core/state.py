"""Lab state on disk: one directory per lab holding its provider, SSH key and secrets (0600)."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path

from lab.core import platform
from lab.core.errors import LabError


def lab_home() -> Path:
    """Where the lab keeps everything it creates: $LAB_HOME, else the platform's data directory."""
    if os.environ.get("LAB_HOME"):
        return Path(os.environ["LAB_HOME"])
    return platform.data_home()


def write_private(path: Path, data: str | bytes) -> None:
    """Write a file readable by its owner only, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data.encode() if isinstance(data, str) else data)
    os.replace(tmp, path)


class LabState:
    """The state directory of one lab: a JSON record, an SSH key pair, secrets and known hosts."""

    def __init__(self, lab_name: str, home: Path | None = None):
        self.name = lab_name
        self.dir = (home or lab_home()) / "labs" / lab_name
        self.record_file = self.dir / "state.json"
        self.key_file = self.dir / "id_ed25519"
        self.known_hosts = self.dir / "known_hosts"
        self.ssh_config_file = self.dir / "ssh_config"
        self.secrets_file = self.dir / "secrets.json"

    @property
    def exists(self) -> bool:
        return self.record_file.is_file()

    def load(self) -> dict:
        """The saved record ({} when the lab was never brought up)."""
        try:
            return json.loads(self.record_file.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, json.JSONDecodeError) as exc:
            raise LabError(f"lab state {self.record_file} is unreadable: {exc}") from None

    def save(self, **fields) -> dict:
        """Merge fields into the record and write it."""
        record = {**self.load(), **fields}
        write_private(self.record_file, json.dumps(record, indent=2, sort_keys=True) + "\n")
        return record

    def ensure_key(self) -> Path:
        """The lab's own SSH key pair, generated once."""
        if not self.key_file.is_file():
            self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            subprocess.run(
                [
                    "ssh-keygen",
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    f"webstack-lab-{self.name}",
                    "-f",
                    str(self.key_file),
                ],
                check=True,
                capture_output=True,
            )
            os.chmod(self.key_file, 0o600)
        return self.key_file

    @property
    def public_key(self) -> str:
        return self.key_file.with_suffix(".pub").read_text().strip()

    def secret(self, name: str) -> str:
        """A generated secret (e.g. a database password), created on first use and kept."""
        values = json.loads(self.secrets_file.read_text()) if self.secrets_file.is_file() else {}
        if name not in values:
            values[name] = secrets.token_urlsafe(24)
            write_private(self.secrets_file, json.dumps(values, indent=2, sort_keys=True) + "\n")
        return values[name]

    @contextmanager
    def lock(self):
        """Hold the lab's lock so two commands never change one lab at once."""
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.dir / ".lock", "w") as handle:
            if not platform.lock(handle):
                raise LabError(f"another lab command is changing lab {self.name!r}; wait for it")
            yield

    def remove(self) -> None:
        """Delete the state directory and everything in it."""
        shutil.rmtree(self.dir, ignore_errors=True)
