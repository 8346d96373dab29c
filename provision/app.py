"""The application server (gunicorn under systemd) and the application files it runs."""

from pathlib import Path

from provision.runner import Component, Run

SOURCE = Path(__file__).resolve().parent / "app"
APP_DIR = "/srv/webstack/app"
APP_USER = "webstack"
APP_BIND = "127.0.0.1:8000"  # only Nginx on the same host can reach it
UNIT = "/etc/systemd/system/webstack-app.service"


def application_files() -> dict[str, bytes]:
    """The code base, relative path → content, as kept in provision/app."""
    return {
        str(path.relative_to(SOURCE)): path.read_bytes()
        for path in sorted(SOURCE.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def configure(run: Run) -> None:
    primary = run.topology.one_with_role("db-primary")

    def step(hr, host):
        hr.user(APP_USER, "/srv/webstack")
        changed = False
        for rel, content in application_files().items():
            changed |= hr.file(f"{APP_DIR}/{rel}", content)
        changed |= hr.template(
            "/etc/webstack/app.env",
            "app.env.j2",
            mode="0640",
            group=APP_USER,
            db_name="webstack",
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
