"""Files the lab ships beside its code: lab.yml, lab-ha.yml, the Vagrantfile, docs/, the app.

In a clone they sit at the repository's top level; a wheel carries them in lab/_bundled
(setup.py copies BUNDLED there at build time), so an installed `lab` finds them too.
"""

from __future__ import annotations

from pathlib import Path

import lab

BUNDLED = ("lab.yml", "lab-ha.yml", "Vagrantfile", "docs", "app")
PACKAGE_DIR = Path(lab.__file__).resolve().parent
BUNDLE_DIR = PACKAGE_DIR / "_bundled"
CLONE_DIR = PACKAGE_DIR.parent


def root() -> Path:
    """The directory holding the shipped files: the installed bundle, else the clone."""
    return BUNDLE_DIR if BUNDLE_DIR.is_dir() else CLONE_DIR


def topology_file(name: str = "lab.yml") -> Path:
    """A packaged topology: lab.yml (the default) or lab-ha.yml (two load balancers)."""
    return root() / name


def vagrantfile_dir() -> Path:
    """The directory of the Vagrantfile (beside the packaged lab.yml it reads)."""
    return root()


def docs_dir() -> Path:
    """The student and instructor pages."""
    return root() / "docs"


def exercises_dir() -> Path:
    """The self-paced exercise pages."""
    return docs_dir() / "exercises"


def app_dir() -> Path:
    """The reference application's code base."""
    return root() / "app"
