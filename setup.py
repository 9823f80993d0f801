"""Builds the shmetrics Python package: the native module with CMake, the rest as is.

    /usr/bin/python3 -m venv --system-site-packages venv && venv/bin/pip install --no-build-isolation .

needs nothing beyond Debian's packages (cmake, g++, pybind11-dev, python3-dev, the libraries of
scripts/deps) and works offline. The module is built by the same CMake project as the C++
library (target shmetrics_python), for the interpreter that runs this script.
"""

import glob
import os
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

ROOT = os.path.dirname(os.path.abspath(__file__))


class CMakeExtension(Extension):
    def __init__(self, name):
        super().__init__(name, sources=[])


class CMakeBuild(build_ext):
    def build_extension(self, ext):
        # SHMETRICS_BUILD_DIR: a CMake build directory to build in (one configured already is
        # reused, so only the module is compiled); by default a fresh one under build/.
        build = os.environ.get("SHMETRICS_BUILD_DIR") or os.path.join(
            os.path.abspath(self.build_temp), "cmake")
        configured = os.path.exists(os.path.join(build, "CMakeCache.txt"))
        os.makedirs(build, exist_ok=True)
        configure = ["cmake", "-S", ROOT, "-B", build, "-DSHMETRICS_BUILD_PYTHON=ON",
                     f"-DPython_EXECUTABLE={sys.executable}"]
        if not configured:  # a tree of our own: only what the module needs
            configure += ["-DCMAKE_BUILD_TYPE=Release", "-DSHMETRICS_BUILD_TESTS=OFF",
                          "-DSHMETRICS_BUILD_BENCHMARKS=OFF", "-DSHMETRICS_BUILD_EXAMPLES=OFF",
                          "-DSHMETRICS_INSTALL=OFF"]
            if shutil.which("ninja"):
                configure += ["-G", "Ninja"]
        subprocess.check_call(configure)
        subprocess.check_call(["cmake", "--build", build, "--target", "shmetrics_python",
                               "-j", str(os.cpu_count() or 2)])
        (built,) = glob.glob(os.path.join(build, "python", "shmetrics", "_shmetrics*.so"))
        dest = self.get_ext_fullpath(ext.name)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        shutil.copyfile(built, dest)


setup(
    name="shmetrics",
    version="0.1.0",
    description="Metrics shared by every process of a pre-fork server, in one shared-memory "
                "heap; a drop-in for prometheus_client",
    python_requires=">=3.9",
    package_dir={"": "python"},
    packages=["shmetrics", "shmetrics.prometheus_client"],
    package_data={"shmetrics": ["py.typed"]},
    ext_modules=[CMakeExtension("shmetrics._shmetrics")],
    cmdclass={"build_ext": CMakeBuild},
    zip_safe=False,
)
