"""Build hook: a wheel carries lab.yml, the Vagrantfile, docs/ and app/ in lab/_bundled."""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

BUNDLED = (
    "lab.yml",
    "lab-ha.yml",
    "Vagrantfile",
    "docs",
    "app",
)  # lab/core/resources.py finds them


class BuildWithBundle(build_py):
    """build_py, plus the files `lab` reads at run time (an editable install reads the clone)."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            return
        bundle = Path(self.build_lib, "lab", "_bundled")
        shutil.rmtree(bundle, ignore_errors=True)
        bundle.mkdir(parents=True)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for name in BUNDLED:
            source = Path(name)
            if source.is_dir():
                shutil.copytree(source, bundle / name, ignore=ignore)
            elif source.is_file():
                shutil.copy2(source, bundle / name)


setup(cmdclass={"build_py": BuildWithBundle})
