"""Near-identical submissions: scripts compared after normalising comments, whitespace and IPs."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from difflib import SequenceMatcher
from itertools import combinations

IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")
TOKEN = re.compile(r"\w+|[^\w\s]")
HEREDOC = re.compile(r"(?<!<)<<-?(?!<)\s*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1")
MAX_TOKENS = 20_000  # per file: a huge submission is compared on its beginning
MIN_TOKENS = 30  # scripts shorter than this are alike by necessity, not worth a look


@dataclass(frozen=True)
class FileMatch:
    """One file both students handed in, and how alike the two versions are."""

    file: str
    ratio: float


@dataclass(frozen=True)
class Pair:
    """Two students whose scripts are nearly the same: for the instructor to look at."""

    a: str
    b: str
    ratio: float  # over all the files both handed in
    files: tuple[FileMatch, ...]

    def to_dict(self) -> dict:
        return asdict(self)


def _strip_comment(line: str, quote: str) -> tuple[str, str]:
    """The line without its shell comment, and the quote still open at its end."""
    kept, escaped = [], False
    for index, char in enumerate(line):
        if escaped:
            escaped = False
        elif char == "\\" and quote != "'":
            escaped = True
        elif quote:
            if char == quote:
                quote = ""
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace() or line[index - 1] == ";"):
            return "".join(kept), quote
        kept.append(char)
    return "".join(kept), quote


def normalise(text: str) -> str:
    """The script as compared: no comments, no blank lines, one space between words, IPs as IP."""
    lines, quote, heredoc = [], "", ""
    for raw in text.splitlines():
        if heredoc:
            if raw.strip() == heredoc:
                heredoc = ""
            line = "" if raw.lstrip().startswith("#") else raw
        else:
            line, quote = _strip_comment(raw, quote)
            if not quote and (found := HEREDOC.search(line)):
                heredoc = found[2]
        line = " ".join(IPV4.sub("IP", line).split())
        if line:
            lines.append(line)
    return "\n".join(lines)


def _tokens(text: str) -> list[str]:
    return TOKEN.findall(normalise(text))[:MAX_TOKENS]


def _ratio(a: list[str], b: list[str]) -> float:
    return SequenceMatcher(None, a, b, autojunk=False).ratio()


def near_identical(submissions: dict[str, dict[str, str]], threshold: float = 0.9) -> list[Pair]:
    """Pairs of students whose common files are at least threshold alike, most alike first."""
    tokens = {
        student: {name: _tokens(text) for name, text in sorted(files.items())}
        for student, files in submissions.items()
    }
    pairs = []
    for a, b in combinations(sorted(tokens), 2):
        common = [name for name in tokens[a] if name in tokens[b]]
        left = [t for name in common for t in [f"<{name}>", *tokens[a][name]]]
        right = [t for name in common for t in [f"<{name}>", *tokens[b][name]]]
        if not common or min(len(left), len(right)) - len(common) < MIN_TOKENS:
            continue
        matcher = SequenceMatcher(None, left, right, autojunk=False)
        if matcher.real_quick_ratio() < threshold or matcher.quick_ratio() < threshold:
            continue
        ratio = matcher.ratio()
        if ratio >= threshold:
            files = tuple(
                FileMatch(name, round(_ratio(tokens[a][name], tokens[b][name]), 3))
                for name in common
            )
            pairs.append(Pair(a, b, round(ratio, 3), files))
    return sorted(pairs, key=lambda pair: (-pair.ratio, pair.a, pair.b))
