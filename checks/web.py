"""Web server (Nginx): serves static content itself, forwards dynamic requests, says who it is."""

from __future__ import annotations

import hashlib
import re
from typing import NotRequired, TypedDict

from checks.base import Check, CheckError, failed_all, passed
from lab.core.wait import until
from lab.facts import nginx, proc, ss, systemd
from lab.observe import probes, visitor
from lab.remote.quoting import pid as valid_pid
from lab.remote.quoting import quote

NGINX_ETAG = re.compile(r'^(?:W/)?"([0-9a-f]+)-([0-9a-f]+)"$')  # "<mtime>-<size>" of a file


class Answered(TypedDict):
    """Nginx's answer to `/` (answered())."""

    status: int
    server: str  # its Server header ('' none)


class Unanswered(TypedDict):
    """Why no answer to `/` came, and the service's journal (answered())."""

    error: str
    journal: str  # why its last start failed ('' no such line)


class NginxState(TypedDict):
    """Who holds port 80, and whether the configuration on disk is what runs."""

    listeners: list[str]  # the programs holding port 80
    loaded: float | None  # when the running configuration was loaded (seconds since the epoch)
    mtimes: dict[str, float]  # configuration file → when it last changed
    config_ok: bool  # nginx -t passed
    config_error: str  # its first error ('' none)


class NginxAnswered(NginxState, Answered):
    pass


class NginxUnanswered(NginxState, Unanswered):
    pass


NginxObservation = dict[str, NginxAnswered | NginxUnanswered]  # by web server


class Fetched(TypedDict):
    """A reply from a web server's site (_fetch())."""

    status: int
    server: str  # Server header
    etag: str  # ETag header
    type: str  # Content-Type header
    length: int  # bytes of the body
    sha256: str  # of the body
    assets: list[str]  # the static files the page references (for `/` only)


class Balanced(TypedDict):
    """A reply through the load balancer, from the web server its X-Served-By names."""

    status: int
    etag: str
    length: int
    sha256: str


class StaticFile(Fetched):
    file: str  # the file under Nginx's root/alias directories with the same content ('' none)
    location: str  # the location of the site's server block that handles it ('' none)
    passes: list[str]  # what that location passes requests to (proxy_pass and the like)
    # the same path asked through the load balancer, as that web server answered it there
    # (absent: recorded before the grader asked; []: no balancer answered, or named none)
    balanced: NotRequired[list[Balanced]]


StaticObservation = dict[str, dict[str, StaticFile]]  # web server → path → its reply

ReverseProxyObservation = dict[str, probes.Application]  # by web server


class Carried(TypedDict):
    """A reply's status and every X-Served-By value it carried."""

    status: int
    values: list[str]


class ServedByHost(TypedDict):
    hostname: str  # the web server's own hostname
    domain: str  # the lab's domain
    responses: dict[str, Carried]  # by path
    not_found: Carried  # what a path that does not exist (/favicon.ico) answered


ServedByObservation = dict[str, ServedByHost]  # by web server


JOURNAL_WAIT = 0.6  # seconds a failed start's own lines may take to reach the journal


def service_error(lab, host: str, unit: str) -> str:
    """Why the service's last start failed, in its own words (an error line of its journal,
    never a notice), or ''. A start that failed a moment ago gets JOURNAL_WAIT s to log why."""
    command = systemd.journal(unit, 20)
    return (
        until(
            lambda: systemd.start_failure(lab.sh(host, command, sudo=True, check=False)),
            JOURNAL_WAIT,
            0.2,
        )
        or ""
    )


def answered(lab, host: str) -> Answered | Unanswered:
    """Nginx's answer to `/` on host (status, Server), or why none came and its journal."""
    try:
        reply = lab.web(host, "/")
    except CheckError as exc:
        return {"error": str(exc), "journal": service_error(lab, host, "nginx")}
    return {"status": reply.status_code, "server": reply.headers.get("Server", "")}


class NginxAnswers(Check):
    id = "web.nginx"
    design = "web-server"
    section = "web server"
    title = "Nginx answers HTTP on each web server, with the configuration on disk"
    requirement = "1 Web Server (Nginx): Handles incoming HTTP requests."
    points = 5
    touches = ()
    hint = "Install and start Nginx on both web servers (`systemctl status nginx`)."
    per_host = True  # judged host by host

    def observe(self, lab) -> NginxObservation:
        def probe(host):
            info = {"listeners": probes.programs_on_port(lab, host, 80)}
            nginx_pids = [
                p
                for item in ss.on_port(probes.listeners(lab, host), 80)
                for n, p in item.processes
                if n == "nginx"
            ]

            def times():
                files = nginx.config_files(probes.nginx_dump(lab, host))
                return probes.config_times(lab, host, nginx_pids, files)

            test, (info["loaded"], info["mtimes"]), answer = lab.together(
                lambda: lab.sh(host, nginx.TEST + '; echo "exit=$?"', sudo=True, check=False),
                times,
                lambda: answered(lab, host),
            )
            info["config_ok"] = test.rstrip().endswith("exit=0")
            info["config_error"] = nginx.first_error(test)
            return {**info, **answer}

        return lab.on_each(lab.web_hosts(), probe)

    def judge(self, hosts: NginxObservation):
        problems, hint = [], ""
        for host, info in hosts.items():
            why = info.get("journal") or info.get("config_error") or ""
            owners = [n for n in info["listeners"] if n != "nginx"]
            if "error" in info and owners and "nginx" not in info["listeners"]:
                problems.append(
                    f"{host}: port 80 belongs to {', '.join(owners)}, not Nginx ({info['error']})"
                )
            elif "error" in info:
                problems.append(f"{host}: {info['error']}" + (f" ({why})" if why else ""))
            elif "nginx" not in info["listeners"]:
                owners = ", ".join(info["listeners"])
                problems.append(
                    f"{host}: port 80 belongs to {owners}, not Nginx"
                    if owners
                    else f"{host}: port 80 belongs to nobody"
                )
            elif not info["config_ok"]:
                problems.append(
                    f"{host}: nginx -t fails on the configuration on disk ({why or 'no detail'}): "
                    "what runs is an older configuration, lost at the next restart"
                    + (f"; {stale}" if (stale := _stale(info)) else "")
                )
                hint = "Fix the error `sudo nginx -t` shows, then `sudo systemctl reload nginx`."
            elif info["status"] >= 500 or not info["server"].lower().startswith("nginx"):
                problems.append(
                    f"{host}: HTTP {info['status']} from {info['server'] or '?'}"
                    + (f"; {stale}" if (stale := _stale(info)) else "")
                )
        if problems:
            return failed_all(problems, hint)
        notes = [f"{h}: {stale}" for h, i in hosts.items() if (stale := _stale(i))]
        return passed(
            ", ".join(
                f"{h}: nginx on port 80 (HTTP {i['status']}), nginx -t ok" for h, i in hosts.items()
            )
            + (f" (note: {'; '.join(notes)})" if notes else "")
        )


def _stale(info: NginxAnswered | NginxUnanswered) -> str:
    """'Nginx has been running since …, before FILE changed at …' when it has, else ''."""
    return proc.older_than_file("Nginx", info.get("loaded"), info.get("mtimes") or {})


def _fetch(lab, host: str, path: str) -> Fetched:
    """host's reply to path as a browser gets it (path ending in visitor.RETURNING: as a
    returning visitor's browser, which sends a cookie)."""
    bare = path.removesuffix(visitor.RETURNING)
    extra = {"headers": {"Cookie": visitor.returning_cookie()}} if bare != path else {}
    reply = lab.web(host, bare, **extra)
    return {
        "status": reply.status_code,
        "server": reply.headers.get("Server", ""),
        "etag": reply.headers.get("ETag", ""),
        "type": reply.headers.get("Content-Type", ""),
        "length": len(reply.content),
        "sha256": hashlib.sha256(reply.content).hexdigest(),
        "assets": probes.page_assets(reply.text) if path == "/" else [],
    }


def files_on_disk(lab, host: str, sizes: set[int]) -> dict[str, str]:
    """sha256 → path of files of the given sizes under Nginx's root and alias directories."""
    roots = nginx.document_roots(probes.nginx_dump(lab, host))
    if not roots or not sizes:
        return {}
    size_test = " -o ".join(f"-size {int(s)}c" for s in sorted(sizes))
    out = lab.sh(
        host,
        f"find {' '.join(quote(r) for r in roots)} -maxdepth 8 -type f \\( {size_test} \\) "
        "-print0 2>/dev/null | head -z -n 200 | xargs -0 -r sha256sum",
        sudo=True,
        check=False,
    )
    found = {}
    for line in out.splitlines():
        digest, _, path = line.partition("  ")
        found.setdefault(digest, path)
    return found


class StaticContent(Check):
    id = "web.static"
    design = "static-content"
    section = "web server"
    title = "Nginx serves the static content itself"
    requirement = "Nginx processes incoming HTTP requests, serves static content."
    points = 5
    hint = (
        "Let Nginx serve the page and its static files from disk (`root`/`alias` pointing at "
        "the application's static directory) instead of proxying them."
    )
    needs = ("web.nginx",)
    touches = ("balancer",)  # asks the page and its files through the balancer too
    per_host = True  # judged host by host

    def observe(self, lab) -> StaticObservation:
        def probe(host):
            page = _fetch(lab, host, "/")
            files = {"/": page}
            for path in page["assets"]:
                files[path] = _fetch(lab, host, path)
            for path in list(files):  # the same again, as a visitor who comes back asks
                files[path + visitor.RETURNING] = _fetch(lab, host, path + visitor.RETURNING)
            disk = files_on_disk(lab, host, {f["length"] for f in files.values()})
            dump = probes.nginx_dump(lab, host)
            for path, reply in files.items():
                reply["file"] = disk.get(reply["sha256"], "")
                reply["location"], reply["passes"] = nginx.location_for(
                    dump, lab.site, path.removesuffix(visitor.RETURNING), lab.address(host)
                )
            return files

        hosts = lab.on_each(lab.web_hosts(), probe)
        paths = {p for files in hosts.values() for p in files if not p.endswith(visitor.RETURNING)}
        balanced = through_the_balancer(lab, sorted(paths), list(hosts))
        for host, files in hosts.items():
            for path, reply in files.items():
                reply["balanced"] = balanced.get((host, path), [])
        return hosts

    def judge(self, hosts: StaticObservation):
        problems, seen = [], []
        for host, files in hosts.items():
            for path, reply in files.items():
                match = NGINX_ETAG.match(reply["etag"])
                etag_ok = not reply["etag"] or (
                    match and int(match.group(2), 16) == reply["length"]
                )
                if reply["status"] != 200:
                    problems.append(f"{host}: {path} answered HTTP {reply['status']}")
                elif reply.get("passes"):
                    problems.append(
                        f"{host}: Nginx hands {path} to another server (location "
                        f"{reply['location']}: {', '.join(reply['passes'])}) instead of "
                        "serving the file itself"
                    )
                elif not reply["file"]:
                    problems.append(
                        f"{host}: {path} ({reply['length']} bytes) matches no file under Nginx's "
                        "root/alias directories"
                    )
                elif not reply["server"].lower().startswith("nginx") or not etag_ok:
                    problems.append(
                        f"{host}: {path} was not sent by Nginx from {reply['file']} (ETag "
                        f"{reply['etag']}: another server made it)"
                    )
                elif other := elsewhere(reply):
                    problems.append(
                        f"{host}: {path} through the load balancer is not what Nginx sends "
                        f"from disk: HTTP {other['status']}, ETag {other['etag'] or 'none'}, "
                        f"{other['length']} bytes (asked directly: HTTP {reply['status']}, ETag "
                        f"{reply['etag']}, {reply['length']} bytes)"
                    )
                else:
                    seen.append(f"{host} {path} = {reply['file']}")
            if "/" in files and not files["/"]["assets"] and files["/"]["status"] == 200:
                seen.append(f"({host}: the page references no other static file)")
        if problems:
            return failed_all(problems)
        return passed(f"served by Nginx from disk: {', '.join(seen)}")


def through_the_balancer(lab, paths: list[str], hosts: list[str]) -> dict:
    """(web server, path) → the replies to path through the load balancer that the web server
    gave (by their X-Served-By), two requests per web server and path, so that each has its
    turn; {} when the lab has no balancer, or it does not answer. A visitor comes that way: a
    server that tells the balancer's requests from the grader's direct ones shows here."""
    if not lab.topology.with_role("lb"):
        return {}
    hostnames, found = probes.web_hostnames(lab), {}
    try:
        for path in paths:
            for _ in range(2 * len(hosts)):
                reply = lab.http(f"http://{lab.address('lb')}{path}", timeout=5, follow=False)
                values = probes.served_by(reply)
                host = probes.served_by_host(
                    values[0] if values else None, hostnames, hosts, lab.topology.domain
                )
                if host:
                    found.setdefault((host, path), []).append(
                        {
                            "status": reply.status_code,
                            "etag": reply.headers.get("ETag", ""),
                            "length": len(reply.content),
                            "sha256": hashlib.sha256(reply.content).hexdigest(),
                        }
                    )
    except CheckError:  # no balancer to ask (yet): the web servers are judged directly
        return {}
    return found


def elsewhere(reply: StaticFile) -> Balanced | None:
    """The first reply through the balancer that differs from what the web server sent the
    grader directly (another status or body, or another ETag: another server made it), or
    None."""
    return next(
        (
            b
            for b in reply.get("balanced") or []
            if (b["status"], b["sha256"], b["etag"])
            != (reply["status"], reply["sha256"], reply["etag"])
        ),
        None,
    )


class ReverseProxy(Check):
    id = "web.reverse-proxy"
    design = "reverse-proxy"
    section = "web server"
    title = "Nginx forwards dynamic requests to the application server"
    requirement = (
        "Nginx ... acts as a reverse proxy, sending dynamic requests to the application server."
    )
    points = 10
    hint = (
        "Forward dynamic paths such as /api/ to the application server (`proxy_pass "
        "http://127.0.0.1:8000;` or `proxy_pass http://unix:/run/app.sock;`) and keep it running."
    )
    needs = ("web.nginx",)
    touches = ()
    per_host = True  # judged host by host

    def observe(self, lab) -> ReverseProxyObservation:
        return lab.on_each(lab.web_hosts(), lambda host: probes.application(lab, host))

    def judge(self, hosts: ReverseProxyObservation):
        problems, seen = [], []
        for host, app in hosts.items():
            problem = _proxy_problem(host, app)
            if problem:
                problems.append(problem)
            else:
                pid = app["replies"][0]["json"]["pid"]
                name = app["master"]["name"] if app["master"] else "?"
                seen.append(f"{host}: Nginx → {app['target']}, answered by {name} {pid}")
        if problems:
            return failed_all(problems)
        return passed(
            "the application server answered /api/status behind Nginx, fresh on every request: "
            + "; ".join(seen)
        )


def _proxy_problem(host: str, app: probes.Application) -> str:
    """What is wrong with host's Nginx → application path, or ''."""
    if not app.get("front_door", True):
        return f"{host}: nothing listens on port 80, so nothing is forwarded to the application"
    return application_problem(host, app)


def application_problem(host: str, app: probes.Application) -> str:
    """What is wrong with the application Nginx's configuration names on host, as it answered
    (through Nginx, or asked directly): nothing there, a fixed answer, another process; ''."""
    if not app["targets"]:
        return f"{host}: Nginx forwards nothing (nginx -T has no proxy_pass or upstream)"
    held = {t: h for t, h in app["holders"].items() if h}
    if not held:
        return f"{host}: Nginx forwards to {', '.join(app['targets'])}, but nothing listens there"
    replies = app["replies"]
    if any(r["json"] is None for r in replies):
        codes = ", ".join(str(r["status"]) for r in replies)
        return f"{host}: /api/status answered HTTP {codes} without the application's JSON object"
    ids = {str(v) for r in replies if (v := r["json"].get("request_id")) not in (None, "")}
    if len(ids) != len(replies):
        return f"{host}: two requests to /api/status got the same request_id (a fixed answer)"
    pids = {int(p) for r in replies if (p := valid_pid(r["json"].get("pid")))}
    owners = {p for h in held.values() for _, p in h}
    if not pids:
        return f"{host}: /api/status names no process id (pid), as the contract asks"
    if pids & set(app["nginx_pids"]):
        return f"{host}: /api/status was answered by Nginx itself (pid {min(pids)})"
    if not pids <= owners:
        names = ", ".join(f"{n} {p}" for t in held.values() for n, p in t)
        return (
            f"{host}: /api/status names pid {', '.join(map(str, sorted(pids)))}, which does not "
            f"hold {', '.join(held)} (held by {names})"
        )
    direct = app["direct"]
    if direct is not None and direct.get("error"):
        return f"{host}: the grader could not reach {direct['target']}: {direct['error']}"
    if direct is not None and not (direct["json"] or {}).get("request_id"):
        return (
            f"{host}: the application at {direct['target']} answered /api/status itself with "
            f"HTTP {direct['status']}, not the contract's JSON"
        )
    return ""


class ServedBy(Check):
    id = "web.served-by"
    design = "served-by"
    section = "web server"
    title = "Every response names the server that really answered (X-Served-By)"
    requirement = "Each web server adds an X-Served-By header with its own hostname."
    points = 5
    hint = "Add `add_header X-Served-By $hostname;` to the site in Nginx, not a fixed name."
    needs = ("web.nginx",)
    touches = ()
    per_host = True  # judged host by host

    def observe(self, lab) -> ServedByObservation:
        def probe(host) -> ServedByHost:
            hostname = lab.sh(host, proc.HOSTNAME).strip()
            page = lab.web(host, "/")
            paths = ["/", *probes.page_assets(page.text, 1), "/api/status"]
            seen = {}
            for path in paths:
                reply = page if path == "/" else lab.web(host, path)
                seen[path] = {"status": reply.status_code, "values": probes.served_by(reply)}
            back = lab.web(host, "/", headers={"Cookie": visitor.returning_cookie()})
            seen["/" + visitor.RETURNING] = {
                "status": back.status_code,
                "values": probes.served_by(back),
            }
            missing = lab.web(host, "/favicon.ico")  # what a browser asks for; the page has none
            return {
                "hostname": hostname,
                "domain": lab.topology.domain,
                "responses": seen,
                "not_found": {"status": missing.status_code, "values": probes.served_by(missing)},
            }

        return lab.on_each(lab.web_hosts(), probe)

    def judge(self, hosts: ServedByObservation):
        problems, seen, notes, failing = [], [], [], []
        for host, info in hosts.items():
            name = info["hostname"]
            responses = info["responses"]
            # a page must carry the header; an error page may (with `always`), and what it
            # carries is judged too: a site whose pages all answer 403/404 still names itself
            judged = {p: r for p, r in responses.items() if 200 <= r["status"] < 300 or r["values"]}
            if not judged:
                codes = ", ".join(f"{p} {r['status']}" for p, r in responses.items())
                problems.append(
                    f"{host}: no page answered and no response carried X-Served-By ({codes})"
                )
                failing += [r["status"] for r in responses.values()]
                continue
            header_problems = len(problems)
            for path, reply in judged.items():
                values = reply["values"]
                if not values:
                    problems.append(f"{host}: {path} (HTTP {reply['status']}) has no X-Served-By")
                elif len(values) > 1:
                    problems.append(
                        f"{host}: {path} sent X-Served-By twice ({', '.join(values)}): "
                        "one add_header too many"
                    )
                elif not probes.names_host(values[0], (name,), info.get("domain", "")):
                    problems.append(
                        f"{host} (hostname {name}): {path} sent X-Served-By: {values[0]}"
                    )
            if len(problems) > header_problems:
                failing.append(None)  # a page answered: the header itself is at fault
            on = [
                p if 200 <= r["status"] < 300 else f"{p} (HTTP {r['status']})"
                for p, r in judged.items()
            ]
            seen.append(f"{host}: X-Served-By {name} on {', '.join(on)}")
            if info["not_found"]["status"] >= 400 and not info["not_found"]["values"]:
                notes.append(f"{host}'s error pages carry none (fine; `always` would add it)")
        if problems:
            return failed_all(problems, served_by_hint(failing))
        return passed("; ".join(seen) + (f" ({'; '.join(notes)})" if notes else ""))


def served_by_hint(failing: list[int | None]) -> str:
    """The hint the evidence calls for: the header's own ('' — the check's hint) when a page
    answered without it or with the wrong one; else what kept every page from answering."""
    if None in failing:
        return ""
    if any(code in (502, 503, 504) for code in failing):
        return (
            "Nothing answered with a page: Nginx could not reach the application behind it "
            "(HTTP 502/503/504). Start the application server and point `proxy_pass` at the "
            "address it listens on (exercise 03); Nginx's error log says what failed. "
            "X-Served-By is judged once a page answers."
        )
    if failing and all(code == 404 for code in failing):
        return (
            "Nothing answered with a page (HTTP 404): the site has no pages and no application "
            "behind it yet. Serve the application's static files and pass the rest to the "
            "application (exercise 03); X-Served-By is judged once a page answers."
        )
    codes = ", ".join(str(code) for code in sorted(set(failing)))
    return (
        f"Nothing answered with a page (HTTP {codes}): make the site answer first; Nginx's error "
        "log (/var/log/nginx/error.log) says why it refused. X-Served-By is judged once a page "
        "answers."
    )
