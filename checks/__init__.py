"""The check catalogue: one small class per requirement of the design document."""

from checks import app, database, dns, files, http, lb, servers, web  # noqa: F401 (registers)
from checks.base import SECTIONS, Check

CATALOGUE: dict[str, type[Check]] = dict(
    sorted(Check.registry.items(), key=lambda item: SECTIONS.index(item[1].section))
)


def catalogue_markdown() -> str:
    """docs/checks.md, made from the check definitions themselves."""
    lines = [
        "# The check catalogue",
        "",
        "What `lab check` grades, made from the check definitions (`python -m checks > "
        "docs/checks.md`).",
        f"{len(CATALOGUE)} checks, {sum(c.points for c in CATALOGUE.values())} points. "
        "Run a section or a single check with `lab check SECTION` or `lab check ID`.",
    ]
    section = None
    for cls in CATALOGUE.values():
        if cls.section != section:
            section = cls.section
            lines += ["", f"## {section}"]
        needs = f" Needs: {', '.join(f'`{n}`' for n in cls.needs)}." if cls.needs else ""
        lines += [
            "",
            f"### `{cls.id}` — {cls.title} ({cls.points} points)",
            "",
            f"> {cls.requirement}",
            "",
            f"The design: [{cls.design}](design.md#{cls.design}).",
            "",
            f"Hint when it fails: {cls.hint}{needs}",
        ]
    return "\n".join(lines) + "\n"
