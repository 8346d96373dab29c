"""`lab exercise N` shows each page with the lab's own addresses and name, and every address a
page holds is one it substitutes: a student on another subnet never copies the default's."""

from __future__ import annotations

import io
import ipaddress
import re

import pytest
import yaml
from rich.console import Console

from lab.cli import app as cli
from lab.cli import render
from lab.core import resources, topology
from lab.course import exercises

PAGES = exercises.all_exercises()
ADDRESS = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){2}\.(?:\d{1,3}|%)(?!\d|\.\d)")
WILDCARD = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){0,2}\.%")  # MariaDB: 192.168.%
PREFIXED = re.compile(
    r"(?<!/dev/tcp/)(?<!/dev/udp/)(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}/\d{1,2}(?![\d.])"
)


def lab_on(name: str, subnet: str, hosts: dict, virtual: str | None = None) -> topology.Topology:
    network = {"subnet": subnet, **({"virtual_address": virtual} if virtual else {})}
    return topology.parse({"name": name, "network": network, "hosts": hosts})


THREE = {  # the three-host labs: same host numbers elsewhere, and other numbers on a /16
    "192.168.206.0/24": topology.parse(topology.variant("pages", 206)),
    "10.20.0.0/16": lab_on(
        "other",
        "10.20.0.0/16",
        {
            "lb-01": {"address": "10.20.1.5", "roles": ["lb", "dns"]},
            "web-01": {"address": "10.20.2.7", "roles": ["web", "app", "db-primary"]},
            "web-02": {"address": "10.20.3.9", "roles": ["web", "app", "db-replica"]},
        },
    ),
}
FOUR = {  # the four-host labs of exercise 11: another /24, and a /23 with other names
    "192.168.207.0/24": topology.parse(
        topology.variant("pages-ha", 207, resources.topology_file("lab-ha.yml"))
    ),
    "10.30.0.0/23": lab_on(
        "ha2",
        "10.30.0.0/23",
        {
            "front-a": {"address": "10.30.1.20", "roles": ["lb", "dns"]},
            "front-b": {"address": "10.30.1.21", "roles": ["lb"]},
            "web-01": {"address": "10.30.0.31", "roles": ["web", "app", "db-primary"]},
            "web-02": {"address": "10.30.0.32", "roles": ["web", "app", "db-replica"]},
        },
        virtual="10.30.1.200",
    ),
}


def labs_for(exercise) -> dict:
    return FOUR if exercise.number in exercises.PAGE_TOPOLOGY else THREE


CASES = [(e, key) for e in PAGES for key in labs_for(e)]


def outside(text: str, lab: topology.Topology) -> list[str]:
    """IPv4 addresses (and MariaDB % patterns) in text that are neither the lab's nor loopback."""
    found = []
    for token in ADDRESS.findall(text):
        if token in (exercises.sql_host_pattern(lab.subnet), str(lab.subnet.netmask)):
            continue
        if token.endswith(".%") or not (
            ipaddress.IPv4Address(token) in lab.subnet or ipaddress.IPv4Address(token).is_loopback
        ):
            found.append(token)
    return found


@pytest.mark.parametrize(("exercise", "key"), CASES, ids=lambda v: getattr(v, "number", v))
def test_a_page_shows_the_labs_own_addresses_and_none_of_the_defaults(exercise, key):
    lab = labs_for(exercise)[key]
    reference = exercises.reference_topology(exercise)
    source = exercise.path.read_text()
    shown = exercises.page(exercise, lab)
    assert shown.translated
    text = shown.text
    prefix = str(reference.subnet.network_address).rsplit(".", 1)[0] + "."
    assert prefix not in text, f"{exercise.name}: a default address is left"
    assert outside(text, lab) == []
    assert (
        str(reference.subnet.netmask) not in text or lab.subnet.netmask == reference.subnet.netmask
    )
    if lab.prefixlen != reference.prefixlen:
        assert not re.search(rf"{re.escape(prefix)}\d+/{reference.prefixlen}\b", text)
    # each default address became the lab's, as often as the page had it
    forms = exercises.address_forms(reference, lab)
    for old, new in forms.items():
        if old[0].isdigit() and "/" not in old:
            assert len(re.findall(rf"(?<![\d.]){re.escape(new)}(?!\d|\.\d)", text)) >= len(
                re.findall(rf"(?<![\d.]){re.escape(old)}(?!\d|\.\d)", source)
            ), f"{exercise.name}: {old} → {new}"
    # and nothing else changed: the same substitution backwards gives the page again
    if lab.prefixlen == reference.prefixlen:
        assert exercises.translate(text, lab, reference) == source


def test_the_database_page_grants_to_the_labs_own_network():
    """Exercise 04's GRANTs: a wrong host part quietly breaks replication and writes."""
    page = exercises.find("04")
    same = exercises.page(page, THREE["192.168.206.0/24"]).text
    assert "'replication'@'192.168.206.%'" in same
    assert "'webstack_write'@'192.168.206.%'" in same
    assert "`'192.168.206.0/255.255.255.0'`" in same
    assert "(`http://192.168.206.11/`, `.12`)" in same
    wide = exercises.page(page, THREE["10.20.0.0/16"]).text
    assert "'replication'@'10.20.%'" in wide
    assert "'10.20.0.0/255.255.0.0'" in wide
    assert "(`http://10.20.2.7/`, `10.20.3.9`)" in wide  # another last octet: the whole address
    assert "MASTER_HOST='10.20.2.7'" in wide


@pytest.mark.parametrize(
    ("subnet", "pattern"),
    [
        ("192.168.206.0/24", "192.168.206.%"),
        ("10.20.0.0/16", "10.20.%"),
        ("10.30.0.0/23", "10.30.0.0/255.255.254.0"),  # a % would leave half the network out
        ("192.168.206.64/26", "192.168.206.64/255.255.255.192"),
    ],
)
def test_mariadb_host_patterns_cover_exactly_the_lab_network(subnet, pattern):
    assert exercises.sql_host_pattern(ipaddress.IPv4Network(subnet)) == pattern


def test_ha_page_on_its_own_lab_has_its_virtual_address():
    eleven = exercises.find("11")
    text = exercises.page(eleven, FOUR["10.30.0.0/23"]).text
    assert "10.30.1.200/23 dev eth0" in text
    assert "network.virtual_address: 10.30.1.200" in text
    assert "unicast_src_ip 10.30.1.20" in text
    assert "lb-01 (10.30.1.20," in text and "**lb-02** (10.30.1.21," in text  # a /23: whole


def test_ha_page_on_a_three_host_lab_shows_the_shipped_four_host_lab_and_says_so():
    eleven = exercises.find("11")
    shown = exercises.page(eleven, THREE["192.168.206.0/24"])
    assert not shown.translated
    assert shown.text == eleven.path.read_text()
    out = io.StringIO()
    Console(file=out, width=300).print(render.exercise(shown))
    assert "lab-ha.yml's addresses" in out.getvalue()
    assert "lab --topology lab-ha.yml exercise 11" in out.getvalue()


LOOKALIKES = """\
- 192.168.56.100 and 192.168.56.111: no host of lab.yml, left whole
- 10.192.168.56.10 and 192.168.56.10.5: not addresses of the lab
- /dev/tcp/192.168.56.11/80 and http://192.168.56.12/api: an address before a path
- www IN CNAME 192.168.56.10 reads as `192.168.56.10.foobar.com.`
- webstack-app, webstack_write, /srv/webstack/app, mywebstack-web-01: the application's names
- webstack-web-01: a container of the lab
- MariaDB 10.11, python3.11, version .12 and (.12 later): not a host's last octet alone
- `192.168.56.0/24`, `192.168.56.0/255.255.255.0`, '192.168.56.%', 192.168.56.1 (the machine)
"""


def test_only_the_labs_own_forms_change():
    lab = THREE["192.168.206.0/24"]
    reference = topology.load(topology.PACKAGED)
    shown = exercises.translate(LOOKALIKES, reference, lab).splitlines()
    assert shown[0] == "- 192.168.56.100 and 192.168.56.111: no host of lab.yml, left whole"
    assert shown[1] == "- 10.192.168.56.10 and 192.168.56.10.5: not addresses of the lab"
    assert (
        shown[2]
        == "- /dev/tcp/192.168.206.11/80 and http://192.168.206.12/api: an address before a path"
    )
    assert shown[3] == "- www IN CNAME 192.168.206.10 reads as `192.168.206.10.foobar.com.`"
    assert shown[4] == LOOKALIKES.splitlines()[4]
    assert shown[5] == "- pages-web-01: a container of the lab"
    assert shown[6] == LOOKALIKES.splitlines()[6]
    assert shown[7] == (
        "- `192.168.206.0/24`, `192.168.206.0/255.255.255.0`, '192.168.206.%', "
        "192.168.206.1 (the machine)"
    )


# -- every address on the pages is one the renderer substitutes ----------------------------


def uncovered(text: str, reference: topology.Topology) -> list[str]:
    """What a page shows of the lab that `lab exercise N` would not show as the lab's: IPv4
    addresses and % patterns left when the substituted forms are taken out (loopback is no
    lab's), a host's last octet alone that is not a host's, the lab's name in another form."""
    probe = lab_on(
        "probe",
        "10.99.0.0/16",
        {
            h.name: {"address": f"10.99.1.{i + 2}", "roles": list(h.roles)}
            for i, h in enumerate(reference.hosts)
        },
        virtual="10.99.1.250" if reference.virtual_address else None,
    )
    forms = exercises.address_forms(reference, probe)
    rest = exercises.form_pattern(forms).sub(" ", text)
    left = [
        a
        for a in ADDRESS.findall(rest)
        if a.endswith("%") or not ipaddress.IPv4Address(a).is_loopback
    ]
    left += [w for w in WILDCARD.findall(rest) if w not in ADDRESS.findall(rest)]
    left += [  # an address with a prefix length (not a /dev/tcp port) is one form
        m.group(0) for m in PREFIXED.finditer(text) if m.group(0) not in forms
    ]
    shorts = exercises.short_forms(reference, probe)
    left += [s for s in exercises.SHORT_FORM.findall(text) if f".{s}" not in shorts]
    if reference.name != "webstack":  # webstack is also the application's user, database, paths
        left += re.findall(rf"(?<![\w.-]){re.escape(reference.name)}(?![\w-])", rest)
    return left


@pytest.mark.parametrize("exercise", PAGES, ids=lambda e: e.name)
def test_every_address_on_a_page_is_one_lab_exercise_substitutes(exercise):
    reference = exercises.reference_topology(exercise)
    assert uncovered(exercise.path.read_text(), reference) == []


def test_an_address_the_renderer_does_not_know_is_found():
    reference = topology.load(topology.PACKAGED)
    text = "ping 192.168.56.10, then 192.168.56.20 and 192.168.57.5 and 10.0.3.1; (.30, `.11`"
    assert uncovered(text, reference) == ["192.168.56.20", "192.168.57.5", "10.0.3.1", "30"]
    text = "'u'@'192.168.56.%', 'u'@'192.168.%', 'u'@'192.168.57.%'"
    assert uncovered(text, reference) == ["192.168.57.%", "192.168.%"]
    ha = topology.load(resources.topology_file("lab-ha.yml"))
    text = "lab foobar-ha, lab-ha.yml, 192.168.58.0/23, 192.168.58.10/16, /dev/tcp/192.168.58.10/22"
    assert uncovered(text, ha) == [
        "192.168.58.0",
        "192.168.58.0/23",
        "192.168.58.10/16",
        "foobar-ha",
    ]


@pytest.mark.parametrize("exercise", PAGES, ids=lambda e: e.name)
def test_a_page_with_addresses_says_where_the_labs_are(exercise):
    text = exercise.path.read_text()
    if ADDRESS.search(text.replace("127.0.0.1", "")):
        note = f"Your lab's addresses: `lab status` (`lab exercise {exercise.number}` shows"
        assert note in text


def test_lab_exercise_shows_the_page_with_the_labs_addresses(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    path = tmp_path / "pages.yml"
    path.write_text(yaml.safe_dump(topology.variant("pages", 206)))
    assert cli.main(["exercise", "04", "--topology", str(path), "--no-color"]) == 0
    out = capsys.readouterr().out
    assert "lab pages (192.168.206.0/24): lb-01 192.168.206.10 · web-01 192.168.206.11" in out
    assert "GRANT REPLICATION SLAVE ON *.* TO 'replication'@'192.168.206.%';" in out
    assert "192.168.56." not in out
    monkeypatch.setenv("LAB_TOPOLOGY", str(path))
    assert cli.main(["exercise", "5"]) == 0
    out = capsys.readouterr().out
    assert "server web-02 192.168.206.12:80 check" in out and "192.168.56." not in out


def test_hints_give_the_labs_own_network_and_no_address_of_their_own():
    from lab.cli.commands.exercise import HINTS, hint_ladder

    text = HINTS.read_text()
    assert [a for a in ADDRESS.findall(text) if not a.startswith(("127.", "0."))] == []
    assert WILDCARD.findall(text) == []
    grants = " ".join(hint_ladder("app.database", THREE["10.20.0.0/16"]))
    assert "'webstack_write'@'10.20.%'" in grants
    grants = " ".join(hint_ladder("app.database", THREE["192.168.206.0/24"]))
    assert "'webstack_write'@'192.168.206.%'" in grants


# -- the steps a page marks to be followed (tests/e2e/test_exercise_walk.py runs them) ------
WALKED = ["01", "02", "03", "04", "05", "06", "08", "09", "10", "11"]
INTERACTIVE = re.compile(r"\b(sudoedit|nano|vi|vim|less)\b|lab ssh [\w-]+\s*($|\n|;|&&)")


def test_marked_blocks_are_parsed_with_where_and_how_they_run():
    text = (
        "1. Both:\n\n   ```sh run=web-01,web-02\n   sudo apt-get install -y nginx\n   ```\n\n"
        "```nginx run=web-01 file=/etc/nginx/x\nserver {}\n```\n"
        "```sql run=web-02\nSTART REPLICA;\n```\n"
        "```sh\nnot a step\n```\n"
        "```sh run=here\ncurl -sI http://10.0.0.1/\n```\n"
    )
    found = exercises.steps(text)
    assert [(s.kind, s.run, s.file) for s in found] == [
        ("shell", ("web-01", "web-02"), None),
        ("file", ("web-01",), "/etc/nginx/x"),
        ("sql", ("web-02",), None),
        ("shell", ("here",), None),
    ]
    assert found[0].body == "sudo apt-get install -y nginx\n"  # a list item's indent is gone


@pytest.mark.parametrize("number", WALKED)
def test_a_walked_page_marks_steps_a_script_can_follow(number):
    """Hosts the lab has, files by absolute path, and nothing that needs a terminal."""
    exercise = exercises.find(number)
    reference = exercises.reference_topology(exercise)
    found = exercises.steps(exercise.path.read_text())
    assert found, f"{exercise.name}: no code block marked run="
    for step in found:
        assert set(step.run) <= {*reference.names, exercises.HERE}, step
        assert step.run and (exercises.HERE not in step.run or step.run == (exercises.HERE,))
        assert step.file is None or (step.file.startswith("/") and step.run != ("here",)), step
        if step.kind == "shell":
            assert not INTERACTIVE.search(step.body), f"{exercise.name}: {step.body}"


def test_ha_page_shows_the_labs_own_vrrp_password_the_reference_uses(tmp_path):
    from lab.core.state import LabState
    from provision import ha

    state = LabState("pages", home=tmp_path)
    eleven = exercises.find("11")
    shown = exercises.page(eleven, FOUR["10.30.0.0/23"], state.secret).text
    password = ha.vrrp_password(state.secret)
    assert "@vrrp-password@" not in shown and "CHANGEME" not in shown
    assert len(password) == 8 and password == state.secret("vrrp")[:8]
    assert shown.count(f"auth_pass {password} ") == 2  # lb-01's file and lb-02's: the same
    assert shown.count(password) == 2  # and nowhere else
    assert oct(state.secrets_file.stat().st_mode & 0o777) == "0o600"
    other = LabState("other", home=tmp_path)
    assert exercises.page(eleven, FOUR["10.30.0.0/23"], other.secret).text != shown


def test_a_page_read_outside_a_lab_keeps_the_placeholder_and_no_page_holds_a_password():
    eleven = exercises.find("11")
    assert "auth_pass @vrrp-password@" in exercises.page(eleven, FOUR["10.30.0.0/23"]).text
    placeholder = "|".join(map(re.escape, exercises.SECRETS))
    password = re.compile(
        r"(auth_pass +|IDENTIFIED BY +'|MASTER_PASSWORD *= *'|_PASSWORD=)" rf"(?!{placeholder})\w"
    )
    for exercise in PAGES:
        text = exercise.path.read_text()
        assert not password.search(text), (exercise.name, password.search(text))


def test_the_database_page_shows_the_labs_own_passwords_the_reference_uses(tmp_path):
    from lab.core.state import LabState

    state = LabState("pages", home=tmp_path)
    shown = exercises.page(exercises.find("04"), FOUR["10.30.0.0/23"], state.secret).text
    replication, read, write = (
        state.secret(f"db_{name}_password") for name in ("replication", "read", "write")
    )
    assert "-password@" not in shown
    assert shown.count(f"IDENTIFIED BY '{replication}'") == 1
    assert f"MASTER_PASSWORD='{replication}'" in shown
    assert shown.count(read) == 2 and shown.count(write) == 2  # the account and app.env
    assert shown.count(replication) == 2  # the account and the replica's CHANGE MASTER


def test_lab_exercise_11_shows_the_password_kept_with_the_labs_secrets_once_it_exists(
    tmp_path, capsys, monkeypatch
):
    from lab.core.resources import topology_file
    from lab.core.state import LabState

    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("LAB_HOME", str(tmp_path / "home"))
    path = tmp_path / "pages-ha.yml"
    path.write_text(yaml.safe_dump(topology.variant("pages-ha", 207, topology_file("lab-ha.yml"))))
    assert cli.main(["exercise", "11", "--topology", str(path), "--no-color"]) == 0
    assert "auth_pass @vrrp-password@" in capsys.readouterr().out  # no lab yet: none made
    state = LabState("pages-ha", home=tmp_path / "home")
    assert not state.dir.exists()
    state.save(provider="lxc")  # the lab exists (`lab up` writes its record)
    assert cli.main(["exercise", "11", "--topology", str(path), "--no-color"]) == 0
    out = capsys.readouterr().out
    password = state.secret("vrrp")[:8]
    assert out.count(f"auth_pass {password} ") == 2 and "@vrrp-password@" not in out
