"""Which code base provisioning deploys: the reference app, or the one lab.yml names."""

from pathlib import Path

import pytest

from lab.core import topology
from provision import app, database, dbflavour
from provision.engine import render
from provision.runner import Run

FIXTURES = Path(__file__).parent / "fixtures"


class Secrets:
    def secret(self, name: str) -> str:
        return f"pw-{name}"


class RecordingHost:
    """A HostRun stand-in that records what a step writes instead of touching a host."""

    def __init__(self, present: str = ""):
        self.files: dict[str, bytes] = {}
        self.commands: list[str] = []
        self.present = present

    def user(self, name, home):
        return False

    def file(self, path, content, mode="0644", owner="root", group="root"):
        self.files[path] = content.encode() if isinstance(content, str) else content
        return True

    def template(self, path, template, mode="0644", owner="root", group="root", **values):
        return self.file(path, render(template, **values))

    def sh(self, command, **_):
        self.commands.append(command)
        return type("Result", (), {"stdout": self.present if "find" in command else ""})()

    def service(self, name, **_):
        return True

    def changed(self, what):
        pass


@pytest.fixture
def own_code_base(tmp_path) -> Path:
    directory = tmp_path / "guestbook"
    for rel, text in {
        "wsgi.py": "application = None\n",
        "static/index.html": "<html></html>\n",
        "static/css/site.css": "body {}\n",
        "__pycache__/wsgi.cpython-311.pyc": "bytecode",
        "lib/helpers.pyc": "bytecode",
        ".git/HEAD": "ref: refs/heads/main\n",
        ".env": "SECRET=1\n",
    }.items():
        (directory / rel).parent.mkdir(parents=True, exist_ok=True)
        (directory / rel).write_text(text)
    return directory


def lab_with(code_base: Path | None, entry: str = "wsgi:application") -> Run:
    data = topology.variant("unit", 90)
    if code_base:
        data["app"] = {"source": str(code_base), "entry": entry}
    hosts = {"web-01": RecordingHost(), "web-02": RecordingHost()}
    return Run(topology.parse(data), state=Secrets(), hosts=hosts)


def test_the_reference_files_are_deployed_by_default():
    files = app.application_files()
    assert {"app.py", "static/index.html", "static/style.css", "static/app.js"} <= set(files)
    run = lab_with(None)
    app.configure(run)
    assert not run.failures
    deployed = run.hosts["web-01"].files
    assert deployed[f"{app.APP_DIR}/app.py"] == (app.SOURCE / "app.py").read_bytes()
    assert b"--access-logfile - app:app\n" in deployed[app.UNIT]


def test_a_code_base_of_its_own_is_deployed_without_bytecode_or_hidden_files(own_code_base):
    files = app.application_files(own_code_base)
    assert set(files) == {"wsgi.py", "static/index.html", "static/css/site.css"}
    run = lab_with(own_code_base)
    app.configure(run)
    assert not run.failures
    for host in run.hosts.values():
        code = {p for p in host.files if p.startswith(app.APP_DIR)}
        assert code == {f"{app.APP_DIR}/{rel}" for rel in files}
        assert b"--access-logfile - wsgi:application\n" in host.files[app.UNIT]
        assert b"WEBSTACK_DB_NAME=webstack\n" in host.files["/etc/webstack/app.env"]


def test_files_another_code_base_left_behind_are_removed(own_code_base):
    wanted = app.application_files(own_code_base)
    present = f"{app.APP_DIR}/wsgi.py\n{app.APP_DIR}/app.py\n{app.APP_DIR}/static/app.js\n"
    assert app.stale_files(present, wanted) == [
        f"{app.APP_DIR}/app.py",
        f"{app.APP_DIR}/static/app.js",
    ]
    assert app.stale_files(f"{app.APP_DIR}/wsgi.py\n", wanted) == []
    run = lab_with(own_code_base)
    run.hosts["web-01"].present = present
    app.configure(run)
    removals = [c for c in run.hosts["web-01"].commands if c.startswith("rm -f ")]
    assert removals == [f"rm -f {app.APP_DIR}/app.py {app.APP_DIR}/static/app.js"]
    assert not [c for c in run.hosts["web-02"].commands if c.startswith("rm -f ")]


def test_the_built_in_schema_and_table_grants_without_a_schema_sql(own_code_base):
    for run in (lab_with(None), lab_with(own_code_base)):
        assert database.schema(run) == database.SCHEMA
        assert database.schema_tables(database.schema(run)) == ["guestbook"]
        grants = {user: g for user, _, _, g in database.accounts(run, dbflavour.MARIADB)}
        assert grants[database.WRITE_USER] == ["SELECT, INSERT ON webstack.guestbook"]


def test_a_schema_sql_replaces_the_built_in_one_with_grants_on_the_database(own_code_base):
    (own_code_base / "schema.sql").write_text(
        "CREATE TABLE IF NOT EXISTS posts (id INT PRIMARY KEY);\n"
        "create table `tags` (post INT, tag VARCHAR(20));\n"
    )
    run = lab_with(own_code_base)
    statements = database.schema(run)
    assert statements.startswith("CREATE DATABASE IF NOT EXISTS webstack;\nUSE webstack;\n")
    assert "guestbook" not in statements
    assert database.schema_tables(statements) == ["posts", "tags"]
    grants = {user: g for user, _, _, g in database.accounts(run, dbflavour.MARIADB)}
    assert grants[database.WRITE_USER] == ["SELECT, INSERT, UPDATE, DELETE ON webstack.*"]
    assert grants[database.READ_USER] == ["SELECT ON webstack.*", "REPLICA MONITOR ON *.*"]


def test_grants_held_on_the_primary_are_compared_with_the_wanted_ones(own_code_base):
    # recorded after switching from the reference to a code base with a schema.sql, before
    # re-granting: the write account held the reference's table grants beside the new ones
    recorded = (FIXTURES / "mariadb-10.11-app-grants.txt").read_text()
    (own_code_base / "schema.sql").write_text("CREATE TABLE posts (id INT);\n")
    reference, own = lab_with(None), lab_with(own_code_base)
    network = "192.168.90.0/255.255.255.0"
    grantees = {"'webstack_read'@'localhost'", f"'webstack_write'@'{network}'"}
    held = database.held_grants(recorded.replace("192.168.82.", "192.168.90."), grantees)
    writes = {g for g in held if g[0] != "'webstack_read'@'localhost'"}
    assert {scope for _, scope, _ in writes} == {"webstack.*", "webstack.guestbook"}
    wanted_own = database.wanted_grants(own, dbflavour.MARIADB)
    wanted_reference = database.wanted_grants(reference, dbflavour.MARIADB)
    assert held != wanted_own and held != wanted_reference  # so the accounts are granted anew
    assert held - {g for g in held if g[1] == "webstack.guestbook"} == wanted_own
    assert wanted_reference == {
        ("'webstack_read'@'localhost'", "webstack.*", "SELECT"),
        (f"'webstack_write'@'{network}'", "webstack.guestbook", "SELECT"),
        (f"'webstack_write'@'{network}'", "webstack.guestbook", "INSERT"),
    }
    assert database.held_grants(recorded, {"'someone'@'%'"}) == set()


def test_accounts_are_granted_exactly_their_privileges(own_code_base):
    statements = database.accounts_sql(lab_with(None), dbflavour.MARIADB)
    write = "'webstack_write'@'192.168.90.0/255.255.255.0'"
    revoke = statements.index(f"REVOKE ALL PRIVILEGES, GRANT OPTION FROM {write};")
    assert revoke < statements.index(f"GRANT SELECT, INSERT ON webstack.guestbook TO {write};")
