"""The module gives the CLI's results on the shared conformance corpus: every case
runs through `fuse-jit run program.fuse --out result.npz` and through fusejit, and
every export must be equal; a case that must fail fails both ways with the same
diagnostic."""

import shutil
import subprocess

import numpy as np
import pytest

import fusejit
from conftest import CONFORMANCE_DIR, cli_environment, fuse_jit_binary

CASES = sorted(p.name for p in CONFORMANCE_DIR.iterdir()) if CONFORMANCE_DIR.is_dir() else []

# The command-line options a case's `args` file may hold, as ExecutionConfig keywords.
OPTION_KEYWORDS = {"--mode": ("mode", str), "--max-iters": ("max_iters", int),
                   "--tol": ("tol", float), "--fixpoint-strategy": ("strategy", str),
                   "--threads": ("threads", int)}


def case_options(case_dir):
    path = case_dir / "args"
    words = path.read_text().split() if path.exists() else []
    keywords = {}
    for option, value in zip(words[::2], words[1::2]):
        if option not in OPTION_KEYWORDS:
            pytest.skip(f"args option {option} has no ExecutionConfig keyword here")
        name, convert = OPTION_KEYWORDS[option]
        keywords[name] = convert(value)
    return words, keywords


def copy_case(case, dest):
    shutil.copytree(CONFORMANCE_DIR / case, dest, ignore=shutil.ignore_patterns("expected"))
    return dest


@pytest.mark.skipif(not CASES, reason="no shared conformance corpus beside the repository")
@pytest.mark.parametrize("parser", ["legacy", "v2"])
@pytest.mark.parametrize("case", CASES)
def test_case_equals_cli(case, parser, tmp_path, monkeypatch):
    binary = fuse_jit_binary()
    if not binary:
        pytest.skip("no fuse-jit binary (set FUSE_JIT_BIN)")
    cli_dir = copy_case(case, tmp_path / "cli")
    py_dir = copy_case(case, tmp_path / "py")
    words, keywords = case_options(cli_dir)

    cli = subprocess.run([binary, "run", "program.fuse", "--out", "result.npz",
                          "--parser", parser, *words],
                         cwd=cli_dir, env=cli_environment(), capture_output=True, text=True,
                         timeout=120)

    monkeypatch.chdir(py_dir)  # the same relative program path as the CLI's
    try:
        program = fusejit.Program("program.fuse", parser=parser)
        outputs = program.compile(fusejit.ExecutionConfig(**keywords)).run()
    except fusejit.FuseError as error:
        assert cli.returncode != 0, f"the CLI ran {case}; the module raised {error}"
        # the same diagnostic, and its location in the exception's fields
        cli_first = cli.stderr.splitlines()[0]
        assert str(error).splitlines()[0] == cli_first
        assert cli_first.startswith(f"{error.file}:{error.line}:{error.column}: error: ")
        return
    assert cli.returncode == 0, f"the module ran {case}; the CLI failed: {cli.stderr}"
    with np.load(cli_dir / "result.npz") as expected:
        assert sorted(expected.files) == sorted(outputs)
        for name in expected.files:
            got, want = outputs[name], expected[name]
            assert got.shape == want.shape, name
            # one library, one machine: the same float32 values (the thread teams
            # may sum in another order, hence the last-bit tolerance)
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=name)
