"""The check catalogue: one small class per requirement of the design document."""

import functools
import importlib
import pkgutil

from checks.base import EXTRA_SECTIONS, SECTIONS, Check


@functools.cache
def catalogue() -> dict[str, type[Check]]:
    """Every check by id, in the order of the sections (each module registers its checks)."""
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")
    return dict(sorted(Check.registry.items(), key=lambda item: SECTIONS.index(item[1].section)))


def __getattr__(name: str):
    """`CATALOGUE` is made when first used: a command that grades nothing starts faster."""
    if name == "CATALOGUE":
        return catalogue()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def catalogue_markdown() -> str:
    """docs/checks.md, made from the check definitions themselves."""
    checks = catalogue()
    lines = [
        "# The check catalogue",
        "",
        "What `lab check` grades, made from the check definitions (`python -m checks > "
        "docs/checks.md`).",
        f"{len(checks)} checks, {sum(c.points for c in checks.values())} points. "
        "Run a section or a single check with `lab check SECTION` or `lab check ID`.",
    ]
    section = None
    for cls in checks.values():
        if cls.section != section:
            section = cls.section
            lines += ["", f"## {section}"]
            if section in EXTRA_SECTIONS:
                lines += ["", f"Graded when asked for: `lab check {section}` or `lab check --all`."]
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
