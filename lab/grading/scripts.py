"""Running a student's files on a lab host: as root, in a unit of their own, bounded, captured."""

from __future__ import annotations

import base64
import io
import re
import tarfile
import time
from pathlib import Path

from lab.grading.assignment import Limits
from lab.grading.model import ScriptRun
from lab.remote.connection import Fleet, describe
from lab.remote.quoting import as_root, quote

WORKDIR = "/root/submission"
TRAILER = re.compile(r"\n?@@webstack-grade rc=(\d*) rest=(\d*)\n?$")
GRACE = 60  # seconds the machine waits beyond the script's own limit


def pack(root: Path) -> str:
    """The submission folder as a base64 tar.gz, to send over SSH's stdin."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(root.rglob("*")):
            if path.is_file() and not path.is_symlink():
                info = archive.gettarinfo(str(path), arcname=str(path.relative_to(root)))
                info.uid = info.gid = 0
                info.uname = info.gname = "root"
                info.mode = 0o755 if info.mode & 0o111 else 0o644
                with open(path, "rb") as handle:
                    archive.addfile(info, handle)
    return base64.b64encode(buffer.getvalue()).decode()


def upload(fleet: Fleet, host: str, packed: str) -> str | None:
    """Put the submission in WORKDIR on host (replacing what was there); None or the error."""
    command = as_root(
        f"rm -rf {WORKDIR} && mkdir -p {WORKDIR} && base64 -d | tar -xzf - -C {WORKDIR}"
    )
    try:
        result = fleet.run(host, command, timeout=120, stdin=packed)
    except Exception as exc:  # an unreachable host is the student's doing; keep grading
        return describe(exc)
    return None if result.ok else (result.stderr.strip() or "upload failed")


def command_for(file: str, unit: str, limits: Limits, env: dict[str, str]) -> str:
    """The shell command that runs file in a transient unit and caps what it prints.

    systemd stops every process the script leaves behind when it ends (a fork bomb too:
    the unit holds at most half the host's processes, so the grader can still log in), and
    after script_seconds; its output is cut at output_kib while the rest is only counted.
    """
    cap = limits.output_kib * 1024
    setenv = " ".join(f"-E {quote(f'{k}={v}')}" for k, v in sorted(env.items()))
    run = (
        f"systemd-run --quiet --pipe --wait --collect --unit={unit} "
        f"-p RuntimeMaxSec={limits.script_seconds} -p TimeoutStopSec=5 "
        f"-p TasksMax={max(64, limits.processes // 2)} --working-directory={WORKDIR} {setenv} "
        f"/bin/bash ./{quote(file)} </dev/null"
    )
    state = f"/run/{unit}"
    return as_root(
        f"{{ {run}; echo $? >{state}.rc; }} 2>&1 | {{ head -c {cap}; wc -c >{state}.rest; }}; "
        f'printf "\\n@@webstack-grade rc=%s rest=%s\\n" "$(cat {state}.rc)" "$(cat {state}.rest)"; '
        f"rm -f {state}.rc {state}.rest"
    )


def run_file(
    fleet: Fleet, host: str, file: str, unit: str, limits: Limits, env: dict[str, str]
) -> ScriptRun:
    """Run one of the student's files on host and say how it went."""
    started = time.monotonic()
    command = command_for(file, unit, limits, env)
    try:
        result = fleet.run(host, command, timeout=limits.script_seconds + GRACE)
        output, exit_code, rest = parse_output(result.stdout)
        if exit_code is None and result.stderr.strip():
            output += f"\n[grader] {result.stderr.strip().splitlines()[-1]}"
    except Exception as exc:  # the host went away, the connection broke, the machine timed out
        output, exit_code, rest = f"[grader] {describe(exc)}", None, 0
    seconds = round(time.monotonic() - started, 1)
    timed_out = seconds >= limits.script_seconds
    return ScriptRun(
        file=file,
        host=host,
        exit_code=None if timed_out else exit_code,
        seconds=seconds,
        output=output,
        output_bytes=len(output.encode()) + rest,
        timed_out=timed_out,
    )


def parse_output(stdout: str) -> tuple[str, int | None, int]:
    """(what the script printed, its exit code or None, bytes beyond the cap) from stdout."""
    match = TRAILER.search(stdout)
    if not match:
        return stdout, None, 0
    exit_code = int(match.group(1)) if match.group(1) else None
    return stdout[: match.start()], exit_code, int(match.group(2) or 0)
