"""The one Jinja setup: strict about missing values, blocks trimmed, trailing newline kept."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined


def environment(directory: Path, html: bool = False) -> Environment:
    """Templates from directory; HTML ones escape what they are given."""
    return Environment(
        loader=FileSystemLoader(directory),
        autoescape=html,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
