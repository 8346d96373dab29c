"""What the grader's requests say about themselves: exactly what a browser sends.

The grader's source is public, so a request it could be told apart by (a library's User-Agent,
a marker in the query, a header no browser sends) is one a student's server could answer
differently. Every HTTP request of the grader takes its headers from here: those of Firefox ESR
on Debian, as it sends them when a user opens the site, when the page loads its stylesheet and
script, and when the page's script calls the application (app/static/app.js).
"""

from __future__ import annotations

import posixpath
import secrets
import time

from urllib3.util.request import ACCEPT_ENCODING

USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
LANGUAGE = "en-US,en;q=0.5"
# what Firefox offers, less what this machine could not decode (brotli and zstd come with the
# project's dependencies, so normally nothing is left out)
ENCODINGS = ", ".join(e for e in ("gzip", "deflate", "br", "zstd") if e in ACCEPT_ENCODING)
PLAIN_ENCODINGS = "gzip, deflate"  # what Firefox offers over plain http (brotli: https only)

IMAGE = "image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5"
PAGE = (
    "text/html,application/xhtml+xml,application/xml;q=0.9,"
    "image/avif,image/webp,image/png,image/svg+xml,*/*;q=0.8"
)
# a subresource's file ending → (Accept, Sec-Fetch-Dest)
SUBRESOURCES = {
    ".css": ("text/css,*/*;q=0.1", "style"),
    ".js": ("*/*", "script"),
    ".mjs": ("*/*", "script"),
    **{e: (IMAGE, "image") for e in (".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".ico")},
}


def kind(method: str, path: str) -> str:
    """How a browser comes to ask for path: 'page' (the user opens it), 'fetch' (the page's
    script calls the application), or a subresource's destination ('style', 'script', 'image')."""
    route = path.split("?", 1)[0].split("#", 1)[0]
    if method != "GET" or route.startswith("/api/"):
        return "fetch"
    extension = posixpath.splitext(route)[1].lower()
    return SUBRESOURCES[extension][1] if extension in SUBRESOURCES else "page"


def trustworthy(origin: str) -> bool:
    """Whether a browser treats origin as a secure context (https, or this machine itself):
    only there does Firefox send Sec-Fetch-* and offer brotli and zstd."""
    scheme, _, rest = origin.partition("://")
    host = rest.split("/", 1)[0].rsplit(":", 1)[0].strip("[]")
    return scheme == "https" or host in ("localhost", "127.0.0.1", "::1")


def headers(method: str, path: str, origin: str) -> dict[str, str]:
    """The headers, in a browser's order, of a request for path on origin (scheme://site);
    Host is the caller's (it names the site, whatever address the request goes to)."""
    method = method.upper()
    what = kind(method, path)
    secure = trustworthy(origin)
    found = {"User-Agent": USER_AGENT}
    if what == "page":
        found["Accept"] = PAGE
    elif what == "fetch":
        found["Accept"] = "*/*"
    else:
        extension = posixpath.splitext(path.split("?", 1)[0])[1].lower()
        found["Accept"] = SUBRESOURCES[extension][0]
    found["Accept-Language"] = LANGUAGE
    found["Accept-Encoding"] = ENCODINGS if secure else PLAIN_ENCODINGS
    if what == "fetch" and method != "GET":
        found["Content-Type"] = "application/json"
        found["Origin"] = origin
    found["Connection"] = "keep-alive"
    if what != "page":
        found["Referer"] = f"{origin}/"
    if what == "page":
        found["Upgrade-Insecure-Requests"] = "1"
    if secure:
        found.update(
            {
                "Sec-Fetch-Dest": "document",
                "Sec-Fetch-Mode": "navigate",
                "Sec-Fetch-Site": "none",
                "Sec-Fetch-User": "?1",
            }
            if what == "page"
            else {
                "Sec-Fetch-Dest": "empty" if what == "fetch" else what,
                "Sec-Fetch-Mode": "cors" if what == "fetch" else "no-cors",
                "Sec-Fetch-Site": "same-origin",
            }
        )
    found["Priority"] = "u=0, i" if what == "page" else "u=4" if what == "fetch" else "u=2"
    return found


RETURNING = " as a returning visitor"  # how a path asked for again is named


def returning_cookie() -> str:
    """The Cookie a returning visitor's browser sends: a first-party analytics cookie (gtag.js
    sets _ga on the site's own domain), new for each run. A server that answers differently
    when a request carries a cookie treats its returning visitors otherwise than the grader."""
    return f"_ga=GA1.1.{secrets.randbelow(9 * 10**9) + 10**9}.{int(time.time()) - 86400 * 3}"
