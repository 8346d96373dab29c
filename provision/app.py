"""The application server (gunicorn under systemd) and the application files it runs."""

import shlex
from pathlib import Path

from lab.core.topology import REFERENCE_APP
from provision.database import DB_NAME
from provision.runner import Component, Run

SOURCE = REFERENCE_APP.path  # the reference code base, app/; lab.yml's app.source may name another
APP_DIR = "/srv/webstack/app"
APP_USER = "webstack"
APP_BIND = "127.0.0.1:8000"  # only Nginx on the same host can reach it
UNIT = "/etc/systemd/system/webstack-app.service"


def deployed(path: Path) -> bool:
    """Whether a file of a code base is deployed: not bytecode, not hidden (.git, .venv, ...)."""
    return path.suffix != ".pyc" and not any(
        part == "__pycache__" or part.startswith(".") for part in path.parts
    )


def application_files(source: Path = SOURCE) -> dict[str, bytes]:
    """A code base, relative path → content (the reference app unless another is named)."""
    return {
        str(path.relative_to(source)): path.read_bytes()
        for path in sorted(source.rglob("*"))
        if path.is_file() and deployed(path.relative_to(source))
    }


def stale_files(present: str, wanted: dict[str, bytes]) -> list[str]:
    """Files under APP_DIR (`find -type f` output) that the code base no longer has."""
    keep = {f"{APP_DIR}/{rel}" for rel in wanted}
    return [path for path in present.splitlines() if path.strip() and path not in keep]


def configure(run: Run) -> None:
    primary = run.topology.one_with_role("db-primary")
    code_base = run.topology.app
    files = application_files(code_base.path)

    def step(hr, host):
        hr.user(APP_USER, "/srv/webstack")
        changed = False
        for rel, content in files.items():
            changed |= hr.file(f"{APP_DIR}/{rel}", content)
        present = hr.sh(f"find {APP_DIR} -type f 2>/dev/null || true").stdout
        stale = stale_files(present, files)
        if stale:  # left by another code base: the directory holds exactly this one
            hr.sh("rm -f " + " ".join(shlex.quote(path) for path in stale))
            hr.sh(f"find {APP_DIR} -mindepth 1 -type d -empty -delete")
            hr.changed(f"removed {len(stale)} files the code base no longer has")
            changed = True
        changed |= hr.template(
            "/etc/webstack/app.env",
            "app.env.j2",
            mode="0640",
            group=APP_USER,
            db_name=DB_NAME,
            read_user="webstack_read",
            read_password=run.secret("db_read_password"),
            write_user="webstack_write",
            write_password=run.secret("db_write_password"),
            primary_address=primary.address,
            primary_name=primary.name,
        )
        unit_changed = hr.template(
            UNIT,
            "webstack-app.service.j2",
            app_user=APP_USER,
            app_dir=APP_DIR,
            app_bind=APP_BIND,
            app_entry=code_base.entry,
            db_service=run.flavour(host).service,
        )
        if unit_changed:
            hr.sh("systemctl daemon-reload")
        hr.service("webstack-app", restart=changed or unit_changed)

    run.each("app", step, "app")


COMPONENT = Component(
    name="app",
    title="application server and files",
    roles=("app",),
    apply=configure,
    packages=lambda run, host: ("gunicorn", "python3-flask", "python3-pymysql"),
)
