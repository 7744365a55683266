"""Package layout (the rest of the metadata is in setup.cfg).

The extension's Alembic migrations stay in the top-level ``migrations/`` folder of the source tree and ship inside
the package as ``flask_pbx365.migrations``. ``demo_app`` (the reference host) is not part of the library's wheel.
"""
from setuptools import find_packages, setup

setup(
    packages=[*find_packages(include=["flask_pbx365", "flask_pbx365.*"]),
              "flask_pbx365.migrations", "flask_pbx365.migrations.versions"],
    package_dir={"flask_pbx365.migrations": "migrations"},
)
