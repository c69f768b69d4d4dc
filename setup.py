"""The package list: every package under ``src/`` plus ``fsq.configs``, which ``pyproject.toml`` maps onto the
top-level ``configs/`` folder (a ``[tool.setuptools.packages.find]`` table cannot add a package from outside
its ``where``). Everything else is declared in ``pyproject.toml``."""

from __future__ import annotations

from setuptools import find_namespace_packages, setup

setup(packages=[*find_namespace_packages("src", include=["fsq", "fsq.*"]), "fsq.configs"])
