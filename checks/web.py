"""Web server (Nginx): serves static content itself, forwards dynamic requests, says who it is."""

import re

from checks.base import Check, CheckError, failed, passed

NGINX_ETAG = re.compile(r'^"([0-9a-f]+)-([0-9a-f]+)"$')  # "<mtime>-<size>" of a file on disk
STATIC_PATHS = ("/", "/static/style.css")


def listeners(lab, host: str, port: int) -> list[str]:
    """Names of the processes listening on TCP port on host."""
    out = lab.sh(host, f"ss -ltnpH 'sport = :{port}'", sudo=True)
    return sorted(set(re.findall(r'\(\("([^"]+)"', out)))


class NginxAnswers(Check):
    id = "web.nginx"
    section = "web server"
    title = "Nginx answers HTTP on each web server"
    requirement = "1 Web Server (Nginx): Handles incoming HTTP requests."
    points = 5
    hint = "Install and start Nginx on both web servers (`systemctl status nginx`)."
    needs = ("servers.reachable",)

    def observe(self, lab):
        def probe(host):
            info = {"listeners": listeners(lab, host, 80)}
            try:
                reply = lab.http(f"http://{lab.address(host)}/")
                info.update(status=reply.status_code, server=reply.headers.get("Server", ""))
            except CheckError as exc:
                info["error"] = str(exc)
            return info

        return lab.on_each(lab.web_hosts(), probe)

    def judge(self, hosts):
        problems = []
        for host, info in hosts.items():
            if "error" in info:
                problems.append(f"{host}: {info['error']}")
            elif not info["server"].lower().startswith("nginx") or info["status"] >= 500:
                problems.append(f"{host}: HTTP {info['status']} from {info['server'] or '?'}")
            elif "nginx" not in info["listeners"]:
                problems.append(f"{host}: port 80 belongs to {info['listeners'] or 'nobody'}")
        if problems:
            return failed("; ".join(problems))
        return passed(
            ", ".join(f"{h}: nginx on port 80 (HTTP {i['status']})" for h, i in hosts.items())
        )


class StaticContent(Check):
    id = "web.static"
    section = "web server"
    title = "Nginx serves the static content itself"
    requirement = "Nginx processes incoming HTTP requests, serves static content."
    points = 5
    hint = (
        "Let Nginx serve the application's static files from disk (`root`/`alias` pointing "
        "at the app's static directory) instead of proxying them."
    )
    needs = ("web.nginx",)

    def observe(self, lab):
        def probe(host):
            files = {}
            for path in STATIC_PATHS:
                reply = lab.http(
                    f"http://{lab.address(host)}{path}", headers={"Accept-Encoding": "identity"}
                )
                files[path] = {
                    "status": reply.status_code,
                    "server": reply.headers.get("Server", ""),
                    "etag": reply.headers.get("ETag", ""),
                    "length": reply.headers.get("Content-Length", ""),
                    "last_modified": reply.headers.get("Last-Modified", ""),
                }
            return files

        return lab.on_each(lab.web_hosts(), probe)

    def judge(self, hosts):
        problems, seen = [], []
        for host, files in hosts.items():
            for path, reply in files.items():
                match = NGINX_ETAG.match(reply["etag"])
                from_disk = (
                    match
                    and reply["last_modified"]
                    and reply["length"].isdigit()
                    and int(match.group(2), 16) == int(reply["length"])
                )
                if reply["status"] != 200:
                    problems.append(f"{host}: {path} answered HTTP {reply['status']}")
                elif not reply["server"].lower().startswith("nginx") or not from_disk:
                    problems.append(
                        f"{host}: {path} did not come from a file served by Nginx "
                        f"(ETag {reply['etag'] or 'none'})"
                    )
                else:
                    seen.append(f"{host} {path}")
        if problems:
            return failed("; ".join(problems))
        return passed(f"served from disk by Nginx (file ETag, Last-Modified): {', '.join(seen)}")


class ReverseProxy(Check):
    id = "web.reverse-proxy"
    section = "web server"
    title = "Nginx forwards dynamic requests to the application server"
    requirement = (
        "Nginx ... acts as a reverse proxy, sending dynamic requests to the application server."
    )
    points = 10
    hint = (
        "Proxy dynamic paths such as /api/ to the application server "
        "(`proxy_pass http://127.0.0.1:8000;`) and keep the application server running."
    )
    needs = ("web.nginx",)

    def observe(self, lab):
        def probe(host):
            bodies = []
            for _ in range(2):
                reply = lab.http(f"http://{lab.address(host)}/api/status")
                try:
                    bodies.append({"status": reply.status_code, "json": reply.json()})
                except ValueError:
                    bodies.append({"status": reply.status_code, "json": None})
            pid = str((bodies[0]["json"] or {}).get("pid", ""))
            process = ""
            if pid.isdigit():
                process = lab.sh(host, f"ps -o comm= -p {pid}", check=False).strip()
            return {"replies": bodies, "pid": pid, "process": process}

        return lab.on_each(lab.web_hosts(), probe)

    def judge(self, hosts):
        problems, seen = [], []
        for host, info in hosts.items():
            replies = info["replies"]
            # the application answers JSON, even when it reports a problem (503)
            if any(not isinstance(r["json"], dict) for r in replies):
                codes = ", ".join(str(r["status"]) for r in replies)
                problems.append(f"{host}: /api/status answered HTTP {codes}, not the application")
                continue
            ids = {r["json"].get("request_id") for r in replies} - {None, ""}
            if len(ids) != len(replies):
                problems.append(
                    f"{host}: two requests got the same answer (a fixed response, "
                    "not the application)"
                )
            elif not info["process"] or info["process"].startswith("nginx"):
                problems.append(
                    f"{host}: the answer names pid {info['pid'] or '?'}, which is not "
                    "a running application process"
                )
            else:
                seen.append(f"{host}: {info['process']} (pid {info['pid']})")
        if problems:
            return failed("; ".join(problems))
        return passed(
            "dynamic requests answered by the application server through Nginx, "
            f"fresh on every request: {', '.join(seen)}"
        )


class ServedBy(Check):
    id = "web.served-by"
    section = "web server"
    title = "Every response names the server that really answered (X-Served-By)"
    requirement = "Each web server adds an X-Served-By header with its own hostname."
    points = 5
    hint = "Use `add_header X-Served-By $hostname always;` in Nginx, not a fixed name."
    needs = ("web.nginx",)

    def observe(self, lab):
        def probe(host):
            hostname = lab.sh(host, "hostname").strip()
            headers = [
                lab.http(f"http://{lab.address(host)}{path}").headers.get("X-Served-By")
                for path in ("/", "/api/status", "/no-such-page")
            ]
            return {"hostname": hostname, "headers": headers}

        return lab.on_each(lab.web_hosts(), probe)

    def judge(self, hosts):
        problems = []
        for host, info in hosts.items():
            wrong = [h for h in info["headers"] if h != info["hostname"]]
            if wrong:
                problems.append(
                    f"{host} (hostname {info['hostname']}) sent X-Served-By: "
                    f"{', '.join(str(w) for w in wrong)}"
                )
        if problems:
            return failed("; ".join(problems))
        return passed(
            ", ".join(
                f"{h}: X-Served-By {i['hostname']} on pages, API and errors"
                for h, i in hosts.items()
            )
        )
