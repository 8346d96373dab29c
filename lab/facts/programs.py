"""Which program a process runs, as the system says: the file the kernel runs it from
(/proc/PID/exe), the package dpkg installed that file from, the installed file whose bytes it
runs (dpkg's md5sums), and whether those bytes carry the program's name (a build from source).

A copy of an interpreter renamed nginx is none of these; a script is named by its interpreter
(the kernel runs the interpreter)."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass

from lab.remote.quoting import pid as valid_pid

MD5SUMS = "/var/lib/dpkg/info/*.md5sums"  # md5 and path of each file each package installed
DELETED = " (deleted)"  # readlink's suffix for a program replaced on disk since it started


@dataclass(frozen=True)
class Program:
    path: str  # the file the kernel runs the process from ('' when it would not say)
    deleted: bool = False  # replaced or removed on disk since (an upgrade, or a hand)
    packages: tuple[str, ...] = ()  # the packages dpkg installed path from (either spelling)
    same_bytes_as: tuple[str, ...] = ()  # installed files (absolute) with the bytes it runs
    names_itself: bool = False  # the bytes it runs carry its file's name


def identify(pids) -> str:
    """Shell telling, for each pid (validated: digits only), the program the process runs:
    `exe PID PATH MD5 yes|no` (its /proc/PID/exe link, the md5 of the bytes running, whether
    they hold the file's name). When they do not hold it, also dpkg's owners of that path in
    both spellings (usrmerge: /usr/sbin and /sbin) as `package PKG: PATH` and the installed
    files with those bytes as `shipped MD5  PATH`, each path and md5 asked once (nginx's
    workers run what its master runs). Run as root (others' processes)."""
    checked = [p for p in (valid_pid(x) for x in pids) if p]
    return (
        "paths='|'; sums=' '; "
        f"for p in {' '.join(checked) or '1'}; do "
        'e=$(readlink "/proc/$p/exe"); f=${e%" (deleted)"}; n=${f##*/}; m=; s=no; '
        'if [ -n "$n" ] && grep -a -q -F -e "$n" "/proc/$p/exe" 2>/dev/null; then s=yes; '
        'else m=$(md5sum < "/proc/$p/exe" 2>/dev/null); m=${m%% *}; '
        "case $f in /usr/*) a=${f#/usr};; /*) a=/usr$f;; *) a=;; esac; "
        'case $paths in *"|$f|"*) ;; *) paths="$paths$f|"; [ -n "$f" ] && '
        'dpkg-query -S "$f" "$a" 2>/dev/null | sed "s/^/package\\t/";; esac; '
        'case $sums in *" $m "*) ;; *) sums="$sums$m "; [ -n "$m" ] && '
        f'grep -h -e "^$m " {MD5SUMS} 2>/dev/null | sed "s/^/shipped\\t/";; esac; fi; '
        'printf "exe\\t%s\\t%s\\t%s\\t%s\\n" "$p" "$e" "$m" "$s"; '
        "done; true"
    )


def _spelling(path: str) -> str:
    """path as usrmerge makes it one file with its other spelling (/usr/sbin/x is /sbin/x)."""
    return path.removeprefix("/usr") if path.startswith("/usr/") else path


def parse_identify(text: str) -> dict[int, Program]:
    """`identify` output as pid → Program."""
    exes: dict[int, tuple[str, str, bool]] = {}
    owners: dict[str, list[str]] = {}
    shipped: dict[str, list[str]] = {}
    for line in text.splitlines():
        kind, _, rest = line.partition("\t")
        if kind == "exe":
            fields = rest.split("\t")
            if len(fields) == 4 and fields[0].isdigit():
                exes[int(fields[0])] = (fields[1], fields[2].strip(), fields[3].strip() == "yes")
        elif kind == "package" and ": " in rest and not rest.startswith("diversion by "):
            names, _, path = rest.partition(": ")
            for name in names.split(","):
                owners.setdefault(_spelling(path.strip()), []).append(name.strip())
        elif kind == "shipped":
            md5, _, path = rest.partition(" ")
            if md5 and path.strip():
                shipped.setdefault(md5, []).append("/" + path.strip().lstrip("/"))
    found = {}
    for pid, (raw, md5, names_itself) in exes.items():
        path = raw.strip().removesuffix(DELETED)
        found[pid] = Program(
            path=path,
            deleted=raw.strip().endswith(DELETED),
            packages=tuple(dict.fromkeys(owners.get(_spelling(path), []))) if path else (),
            same_bytes_as=tuple(dict.fromkeys(shipped.get(md5, []))) if md5 else (),
            names_itself=names_itself,
        )
    return found


def name(program: Program, fallback: str = "") -> str:
    """What the process runs, by its file's name when the system vouches for it: the bytes
    running are those a package installed under that name (a packaged program, a venv's
    copied interpreter), or they carry the name (a build from source; an upgraded one whose
    file was replaced). Otherwise that name with why it is not that program, e.g. `nginx
    (/opt/fake/nginx: from no package, and not a build of nginx: the same bytes as
    /usr/bin/python3.11)`. fallback (the process name) when the kernel did not say."""
    if not program.path:
        return fallback
    base = posixpath.basename(program.path)
    if program.names_itself or any(posixpath.basename(s) == base for s in program.same_bytes_as):
        return base
    shown = program.path + (DELETED if program.deleted else "")
    source = (
        f"not the file package {', '.join(program.packages)} installed there"
        if program.packages
        else "from no package"
    )
    copy = f": the same bytes as {program.same_bytes_as[0]}" if program.same_bytes_as else ""
    return f"{base} ({shown}: {source}, and not a build of {base}{copy})"


# The programs the grader runs on a host (lab.remote.quoting.trusted, the facts' commands), in
# each spelling usrmerge gives them: their packages' files must be those dpkg installed.
GRADER_RUNS = (
    "sh",
    "dash",
    "env",
    "timeout",
    "sudo",
    "perl",
    "cat",
    "md5sum",
    "sha256sum",
    "readlink",
    "stat",
    "find",
    "ss",
    "ip",
    "systemctl",
    "journalctl",
    "getent",
    "mariadb",
    "mysql",
    "nginx",
    "haproxy",
    "nsd-checkconf",
    "dpkg-query",
    "systemd-run",
)
BIN_DIRS = ("/bin", "/usr/bin", "/sbin", "/usr/sbin")
# where a changed file of those packages changes what runs: programs, libraries, perl modules
RUNS_FROM = ("/bin/", "/sbin/", "/usr/bin/", "/usr/sbin/", "/lib", "/usr/lib", "/usr/share/perl")
PRELOAD = "/etc/ld.so.preload"
# the diversions of those programs the distribution's packages make (`dpkg-divert --list`)
PACKAGES_DIVERT = ("diversion of /bin/sh to /bin/sh.distrib by dash",)


def integrity() -> str:
    """Shell saying whether the grader's programs on a host are the distribution's: `dpkg
    --verify` of the packages they come from (`verify FLAGS [c] PATH` for a changed file), the
    diversions of any of them (`diverted LINE`) and what /etc/ld.so.preload loads into every
    program (`preload LINE`). Run as root."""
    paths = " ".join(f"{d}/{p}" for p in GRADER_RUNS for d in BIN_DIRS)
    return (
        f"p=$(dpkg-query -S {paths} 2>/dev/null | grep -v '^diversion' | sed 's/: .*//' | "
        "tr ',' '\\n' | tr -d ' ' | sort -u); "
        'dpkg --verify $p 2>/dev/null | sed "s/^/verify\\t/"; '
        f"dpkg-divert --list 2>/dev/null | grep -E ' ({'|'.join(BIN_DIRS)})/' | "
        'sed "s/^/diverted\\t/"; '
        f'grep -v "^[[:space:]]*\\(#\\|$\\)" {PRELOAD} 2>/dev/null | sed "s/^/preload\\t/"; true'
    )


def untrusted(text: str) -> list[str]:
    """What in integrity()'s output makes a program the grader runs other than the
    distribution's, in words: a changed or missing file (not a configuration file), a program
    diverted other than as the distribution does (dash diverts /bin/sh; a diversion made
    `--package` of another name is no package's), a library preloaded into every program."""
    found = []
    for line in text.splitlines():
        kind, _, rest = line.partition("\t")
        words = rest.split()
        if kind == "verify" and words:
            path, conffile = words[-1], len(words) == 3 and words[1] == "c"
            changed = words[0] == "missing" or words[0][2:3] == "5"
            if changed and not conffile and path.startswith(RUNS_FROM):
                how = (
                    "is missing"
                    if words[0] == "missing"
                    else "is not the file its package installed"
                )
                found.append(f"{path} {how} (dpkg --verify)")
        elif kind == "diverted" and rest.strip() not in PACKAGES_DIVERT:  # by hand, or a fake
            diverted = [w for w in words if w.startswith(BIN_DIRS)]
            if diverted and posixpath.basename(diverted[0]) in GRADER_RUNS:
                found.append(f"{diverted[0]} is diverted ({rest.strip()})")
        elif kind == "preload" and rest.strip():
            found.append(f"{PRELOAD} loads {rest.strip()} into every program")
    return found
