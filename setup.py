"""Ships the recipes with the package: a wheel carries ``recipes/`` as ``limo/recipes/``.

Everything else about the build is in pyproject.toml. ``recipes/`` stays at the repository root (YAML only:
docs/architecture.md, "Layers"); this build step copies it into the built ``limo`` package, where
`limo.config.search_path` finds it when the package is installed (``pip install .``, a wheel). An editable install
reads the source tree's folder.
"""

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithRecipes(build_py):
    def run(self) -> None:
        super().run()
        source = Path(__file__).resolve().parent / "recipes"
        if source.is_dir():  # a build from an sdist has it too (MANIFEST.in)
            shutil.copytree(source, Path(self.build_lib) / "limo" / "recipes", dirs_exist_ok=True)


setup(cmdclass={"build_py": BuildPyWithRecipes})
