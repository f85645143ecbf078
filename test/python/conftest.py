"""Shared set-up of the fusejit tests: where the source tree, the fuse-jit binary
and the shared conformance corpus are, and a private code cache."""

import os
import pathlib
import shutil
import tempfile

import pytest

SOURCE_DIR = pathlib.Path(os.environ.get("FUSE_SOURCE_DIR",
                                         pathlib.Path(__file__).resolve().parents[2]))
# CI keeps the shared corpus beside the repository (../shared).
SHARED_DIR = SOURCE_DIR.parent / "shared"
CONFORMANCE_DIR = SHARED_DIR / "conformance" / "cases"


def fuse_jit_binary():
    """The fuse-jit binary of the build under test (ctest sets FUSE_JIT_BIN)."""
    path = os.environ.get("FUSE_JIT_BIN")
    if path and os.path.exists(path):
        return path
    for build in ("build", "build-py"):
        candidate = SOURCE_DIR / build / "fuse-jit"
        if candidate.exists():
            return str(candidate)
    return None


def cli_environment():
    """The environment for the fuse-jit binary: without the sanitizer runtime an
    ASan build preloads into the interpreter (the binary links its own)."""
    env = dict(os.environ)
    env.pop("LD_PRELOAD", None)
    return env


@pytest.fixture(scope="session", autouse=True)
def private_code_cache():
    """Runs never write to ~/.cache: a cache of our own unless ctest set one."""
    if os.environ.get("FUSE_JIT_CACHE_DIR"):
        yield
        return
    cache = tempfile.mkdtemp(prefix="fusejit-pytest-cache-")
    os.environ["FUSE_JIT_CACHE_DIR"] = cache
    yield
    shutil.rmtree(cache, ignore_errors=True)
