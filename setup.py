"""The wheel also carries the front-end files the pages use (HTMX, Swagger UI), copied from
``node_modules`` (``make install`` fills it) into ``console/vendor/``. The rest of the build is
declared in pyproject.toml."""

import runpy
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


class BuildWithVendorFiles(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install serves them from node_modules itself
            return
        vendor = runpy.run_path(str(HERE / "console" / "vendor_files.py"))["VENDOR_FILES"]
        for name, (directory, files) in vendor.items():
            target = Path(self.build_lib) / "console" / "vendor" / name
            target.mkdir(parents=True, exist_ok=True)
            for file in files:
                source = HERE / "node_modules" / directory / file
                if not source.is_file():  # never a wheel whose console loads no script
                    raise SystemExit(f"{source} is missing: run `npm ci` (make install) before building")
                shutil.copyfile(source, target / file)


setup(cmdclass={"build_py": BuildWithVendorFiles})
