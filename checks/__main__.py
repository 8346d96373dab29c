"""Print the check catalogue as Markdown: python -m checks > docs/checks.md."""

from checks import catalogue_markdown

print(catalogue_markdown(), end="")
