"""The fusejit module: programs, configs, runs on NumPy arrays, zero-copy inputs,
errors, threads, Ctrl-C, explanations and files. Expected values are computed by
hand or with plain NumPy."""

import gc
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading

import numpy as np
import pytest

import fusejit
from conftest import SOURCE_DIR, cli_environment

EXAMPLES = SOURCE_DIR / "examples"

MATMUL = """\
A[i,k] = "a.npy"
B[k,j] = "b.npy"
C[i,j] = A[i,k] B[k,j]
R[i] max= C[i,j]
export C
export R
"""

# A fixpoint that never converges: A flips between 0 and B every sweep.
FLIP = """\
B[i] = const([1, 2])
A[i] = B[i] - A[i]
export A
export B
"""


def matmul_program(tmp_path, a, b):
    np.save(tmp_path / "a.npy", a)
    np.save(tmp_path / "b.npy", b)
    path = tmp_path / "mm.fuse"
    path.write_text(MATMUL)
    return fusejit.Program(path)


def naive_matmul(a, b):
    c = np.zeros((a.shape[0], b.shape[1]), np.float64)
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            for k in range(a.shape[1]):
                c[i, j] += float(a[i, k]) * float(b[k, j])
    return c


# ---- programs and runs ----

def test_run_reads_sources_beside_the_program_file(tmp_path):
    a = np.array([[1, 2], [3, 4]], np.float32)
    b = np.array([[5, 6, 7], [8, 9, 10]], np.float32)
    out = matmul_program(tmp_path, a, b).compile().run()
    assert isinstance(out, dict) and list(out) == ["C", "R"]
    np.testing.assert_array_equal(out["C"], [[21, 24, 27], [47, 54, 61]])
    np.testing.assert_array_equal(out["R"], [27, 61])
    assert out["C"].dtype == np.float32


def test_inputs_replace_sources_and_fix_shapes(tmp_path):
    rng = np.random.default_rng(1)
    prog = matmul_program(tmp_path, np.zeros((2, 2), np.float32), np.zeros((2, 2), np.float32))
    a = rng.standard_normal((5, 7)).astype(np.float32)
    b = rng.standard_normal((7, 3)).astype(np.float32)
    runner = prog.compile(inputs={"A": a, "B": b})
    out = runner.run(inputs={"A": a, "B": b})
    np.testing.assert_allclose(out["C"], naive_matmul(a, b), rtol=1e-5, atol=1e-5)
    with pytest.raises(fusejit.ArgumentError) as info:
        runner.run(inputs={"A": a[:4], "B": b})
    assert isinstance(info.value, ValueError)


def test_other_dtypes_and_layouts_are_converted(tmp_path):
    prog = matmul_program(tmp_path, np.zeros((2, 2), np.float32), np.zeros((2, 2), np.float32))
    a = np.arange(12, dtype=np.float64).reshape(3, 4)
    b = np.asfortranarray(np.arange(8, dtype=np.float32).reshape(4, 2))
    runner = prog.compile(inputs={"A": a, "B": b})
    want = naive_matmul(a, b)
    for a_in, b_in in [(a, b), (a.astype(np.int64), b.tolist()), (a.tolist(), b[:, ::1])]:
        out = runner.run(inputs={"A": a_in, "B": b_in})
        np.testing.assert_array_equal(out["C"], want)


def test_program_from_text_v2_and_params():
    text = "#!fuse v2\nparam n = 2\nX[i] = const([1, 2, 3])\nY[i] = X[i] * n\nexport Y\n"
    out = fusejit.Program(text).compile().run()
    np.testing.assert_array_equal(out["Y"], [2, 4, 6])
    out = fusejit.Program(text, params={"n": 10}).compile().run()
    np.testing.assert_array_equal(out["Y"], [10, 20, 30])
    plain = "X[i] = const([1, 2])\nY[i] = X[i] * 3\nexport Y\n"
    np.testing.assert_array_equal(fusejit.Program(plain, parser="v2").compile().run()["Y"],
                                  [3, 6])
    with pytest.raises(fusejit.FuseSyntaxError):
        fusejit.Program(plain, parser="legacy")
    with pytest.raises(ValueError):
        fusejit.Program(plain, parser="v3")


def test_program_lists_inputs_and_exports(tmp_path):
    prog = matmul_program(tmp_path, np.zeros((2, 3), np.float32), np.zeros((3, 4), np.float32))
    assert [(t["name"], t["shape"]) for t in prog.inputs] == [("A", (2, 3)), ("B", (3, 4))]
    assert [(t["name"], t["shape"]) for t in prog.exports] == [("C", (2, 4)), ("R", (2,))]


def test_query_selects_positions():
    runner = fusejit.Program(EXAMPLES / "tc.fuse").compile()
    edges = {(0, 1), (1, 2), (2, 3)}
    closure = np.zeros((4, 4))
    for _ in range(4):  # the transitive closure by repeated joins
        for x, y in list(edges):
            for y2, z in list(edges):
                if y == y2:
                    edges.add((x, z))
    for x, z in edges:
        closure[x, z] = 1
    np.testing.assert_array_equal(runner.query("Path"), closure)
    np.testing.assert_array_equal(runner.query("Path", x=1), closure[1])
    assert runner.query("Path", x=0, y=-1) == closure[0, 3]
    np.testing.assert_array_equal(runner.query("Path", selectors="y=2"), closure[:, 2])
    with pytest.raises(fusejit.ArgumentError):
        runner.query("Path", q=1)


def test_config_fields_and_defaults():
    cfg = fusejit.ExecutionConfig(device="cpu", demand_mode=True, max_iters=5, seed=3)
    assert cfg.mode == "demand" and cfg.device == "cpu" and cfg.max_iters == 5
    assert cfg.precision == "fp32" and cfg.threads == 0 and cfg.write_sinks is True
    assert "mode='demand'" in repr(cfg)
    with pytest.raises(ValueError, match="mode must be one of single, fixpoint, demand"):
        fusejit.ExecutionConfig(mode="fast")
    with pytest.raises(TypeError):
        fusejit.ExecutionConfig(threads="4")
    with pytest.raises(TypeError):
        fusejit.ExecutionConfig(colour="red")
    with pytest.raises(fusejit.UnsupportedError):
        fusejit.Program("X[i] = const([1])\nexport X\n").compile(
            fusejit.ExecutionConfig(device="cuda"))


@pytest.mark.parametrize("precision, dtype, rtol", [
    ("fp32", np.float32, 1e-5), ("fp64", np.float64, 1e-12),
    ("bf16", np.float32, 1e-2), ("fp16", np.float16, 1e-3)])
def test_precision_sets_the_outputs_dtype_and_accuracy(precision, dtype, rtol):
    rng = np.random.default_rng(4)
    a = rng.uniform(-1, 1, (37, 70))
    b = rng.uniform(-1, 1, (70, 45))
    prog = fusejit.Program("A[i,k] = \"a.npy\"\nB[k,j] = \"b.npy\"\nC[i,j] = A[i,k] B[k,j]\n"
                           "export C\n")
    runner = prog.compile(fusejit.ExecutionConfig(precision=precision),
                          inputs={"A": a, "B": b})
    c = runner.run(inputs={"A": a, "B": b})["C"]
    assert c.dtype == dtype  # bf16 comes back widened to float32 (NumPy has no bfloat16)
    want = naive_matmul(a, b)
    err = np.linalg.norm(c.astype(np.float64) - want) / np.linalg.norm(want)
    assert err <= rtol
    if precision == "bf16":  # every value is a bfloat16: its low 16 bits are zero
        assert not np.any(c.view(np.uint32) & 0xFFFF)


def test_demand_mode_skips_what_exports_do_not_need():
    text = ("A[i] = const([1, 2])\nB[i] = A[i] A[i]\nC[j] = const([1, 2, 3])\n"
            "Unused[j] = C[j] + 1\nexport B\n")
    # the seeds' spelling, backend= included
    runner = fusejit.Program(text).compile(backend="numpy",
                                           config=fusejit.ExecutionConfig(demand_mode=True))
    np.testing.assert_array_equal(runner.run()["B"], [1, 4])
    status = {e["name"]: e["status"] for e in runner.trace()["entries"]}
    assert status["Unused"] == "skipped" and status["B"] == "evaluated"


def test_monte_carlo_with_every_cell_sampled_is_exact():
    text = "X[i,j] = const([[1, 2, 3], [4, 5, 6]])\nS[i] = X[i,j]\nexport S\n"
    cfg = fusejit.ExecutionConfig(projection="monte_carlo", samples=1000, seed=7)
    np.testing.assert_allclose(fusejit.Program(text).compile(cfg).run()["S"], [6, 15],
                               rtol=1e-6)


def test_temperature_schedules():
    text = "X[i] = const([1, -2])\nY[i] = sig(X[i])\nexport Y\n"
    prog = fusejit.Program(text)
    hard = prog.compile().run()["Y"]
    np.testing.assert_array_equal(hard, [1, 0])  # no temperature: x > 0
    soft = prog.compile(fusejit.ExecutionConfig(temperature=1.0)).run()["Y"]
    np.testing.assert_allclose(soft, 1 / (1 + np.exp(-np.array([1.0, -2.0]))), rtol=1e-5)
    calls = []

    def schedule(tensor, iteration):
        calls.append((tensor, iteration))
        return 1.0

    out = prog.compile(fusejit.ExecutionConfig(temperature={"Y": schedule})).run()["Y"]
    np.testing.assert_allclose(out, soft, rtol=1e-6)
    assert ("Y", 0) in calls


def test_a_raising_temperature_callback_raises_from_run():
    text = "X[i] = const([1, -2])\nY[i] = sig(X[i])\nexport Y\n"

    def schedule(tensor, iteration):
        raise LookupError("no schedule for " + tensor)

    runner = fusejit.Program(text).compile(fusejit.ExecutionConfig(temperature=schedule))
    with pytest.raises(LookupError, match="no schedule for X"):  # the first tensor
        runner.run()


def test_library_warnings_are_python_warnings():
    runner = fusejit.Program(FLIP).compile()  # single mode: one sweep of a recursion
    with pytest.warns(fusejit.FuseWarning, match="A reads itself"):
        out = runner.run()
    np.testing.assert_array_equal(out["A"], [1, 2])  # B - 0: the zeros not computed yet
    assert issubclass(fusejit.FuseWarning, UserWarning)


# ---- zero-copy inputs and shared outputs ----

def borrowed_run(x):
    """Runs A = X + A/2 to its fixpoint (2X) while a temperature callback multiplies
    x by 10 in place at sweep 3: a run reading x itself ends at 20X, a run reading a
    copy at 2X."""
    prog = fusejit.Program('X[i] = "x.npy"\nA[i] = X[i] + 0.5 A[i]\nexport A\n')

    def schedule(tensor, iteration):
        if iteration == 3:
            x[:] = x * 10
        return 0.0

    cfg = fusejit.ExecutionConfig(mode="fixpoint", max_iters=200,
                                  temperature={"A": schedule})
    return prog.compile(cfg, inputs={"X": x}).run(inputs={"X": x})["A"]


def test_aligned_float32_input_is_used_in_place():
    x = fusejit.aligned(np.array([1, 2, 3], np.float32))
    assert x.ctypes.data % 64 == 0 and x.dtype == np.float32 and x.flags.c_contiguous
    np.testing.assert_allclose(borrowed_run(x), [20, 40, 60], rtol=1e-4)


def test_unaligned_float32_input_is_used_in_place():
    raw = fusejit.aligned(np.zeros(4, np.float32))
    x = raw[1:]  # 4 bytes past a 64-byte boundary
    x[:] = [1, 2, 3]
    assert x.ctypes.data % 64 == 4
    np.testing.assert_allclose(borrowed_run(x), [20, 40, 60], rtol=1e-4)


def test_float64_input_is_copied():
    x = np.array([1, 2, 3], np.float64)  # converted to float32: the run reads a copy
    np.testing.assert_allclose(borrowed_run(x), [2, 4, 6], rtol=1e-4)


def test_outputs_share_the_library_memory_and_outlive_the_runner(tmp_path):
    a = np.eye(3, dtype=np.float32)
    runner = matmul_program(tmp_path, a, a).compile()
    out = runner.run()
    c = out["C"]
    assert not c.flags.owndata and c.flags.writeable  # a view of the output map
    del runner, out
    gc.collect()
    np.testing.assert_array_equal(c, np.eye(3))
    c[0, 0] = 5  # the memory stays valid and ours
    assert c.sum() == 7


def test_outputs_pickle_as_plain_dicts(tmp_path):
    import pickle
    a = np.eye(2, dtype=np.float32)
    out = matmul_program(tmp_path, a, a).compile().run()
    back = pickle.loads(pickle.dumps(out))
    assert type(back) is dict and sorted(back) == ["C", "R"]
    np.testing.assert_array_equal(back["C"], np.eye(2))


# ---- errors ----

def test_errors_carry_file_line_and_column(tmp_path):
    path = tmp_path / "bad.fuse"
    path.write_text("A[i] = const([1, 2])\nB[i] = A[i] C[i]\nexport B\n")
    with pytest.raises(fusejit.ShapeError) as info:
        fusejit.Program(str(path))
    error = info.value
    assert (error.file, error.line, error.column) == (str(path), 2, 13)
    assert error.message == "unknown tensor 'C'"
    assert error.status == 2 and error.status_name == "shape error"
    assert isinstance(error, fusejit.FuseError)
    assert str(error).splitlines()[0] == f"{path}:2:13: error: unknown tensor 'C'"


def test_syntax_error_of_a_text_names_it():
    with pytest.raises(fusejit.FuseSyntaxError) as info:
        fusejit.Program("A[i] = = B\n", name="snippet.fuse")
    assert info.value.file == "snippet.fuse" and info.value.line == 1
    assert info.value.column is not None


def test_missing_source_file_is_an_io_error(tmp_path):
    prog = fusejit.Program('X[i] = "missing.npy"\nexport X\n',)
    with pytest.raises(fusejit.FuseIOError) as info:
        prog.compile(fusejit.ExecutionConfig(base_dir=tmp_path)).run()
    assert "missing.npy" in str(info.value)


def test_not_converged_carries_the_last_sweep():
    runner = fusejit.Program(FLIP).compile(fusejit.ExecutionConfig(mode="fixpoint",
                                                                   max_iters=10))
    with pytest.raises(fusejit.NotConvergedError) as info:
        runner.run()
    # sweeps 1..10 alternate B, 0, B, ...: the tenth is 0
    np.testing.assert_array_equal(info.value.outputs["A"], [0, 0])
    np.testing.assert_array_equal(info.value.outputs["B"], [1, 2])


# ---- threads, the GIL and Ctrl-C ----

def test_runners_in_threads_at_once(tmp_path):
    rng = np.random.default_rng(5)
    prog = matmul_program(tmp_path, np.zeros((2, 2), np.float32), np.zeros((2, 2), np.float32))
    jobs = []
    for t in range(4):
        a = rng.standard_normal((6 + t, 5)).astype(np.float32)
        b = rng.standard_normal((5, 4)).astype(np.float32)
        jobs.append((a, b, naive_matmul(a, b)))
    failures = []

    def work(a, b, want):
        try:
            runner = prog.compile(fusejit.ExecutionConfig(threads=1), inputs={"A": a, "B": b})
            for _ in range(20):
                got = runner.run(inputs={"A": a, "B": b})["C"]
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
        except Exception as error:  # reported by the main thread
            failures.append(error)

    threads = [threading.Thread(target=work, args=job) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_the_gil_is_released_during_a_run():
    """A run on another thread that only Python code on this thread can stop: if the
    run held the GIL, this thread could not call interrupt() and the test would hang."""
    runner = fusejit.Program(FLIP).compile(fusejit.ExecutionConfig(mode="fixpoint",
                                                                   max_iters=2**31 - 1))
    result = []

    def work():
        try:
            runner.run()
            result.append("finished")
        except KeyboardInterrupt:
            result.append("interrupted")

    worker = threading.Thread(target=work)
    worker.start()
    while worker.is_alive():  # an interrupt before the run starts has no effect
        runner.interrupt()
        worker.join(0.05)
    assert result == ["interrupted"]


def test_ctrl_c_raises_keyboard_interrupt_and_the_runner_survives():
    runner = fusejit.Program(FLIP).compile(fusejit.ExecutionConfig(mode="fixpoint",
                                                                   max_iters=2**31 - 1))
    previous = signal.getsignal(signal.SIGINT)
    timer = threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT))
    try:
        with pytest.raises(KeyboardInterrupt):
            timer.start()  # inside the block: a signal however early stays in the test
            runner.run()
    finally:
        timer.cancel()
    assert signal.getsignal(signal.SIGINT) is previous
    np.testing.assert_array_equal(runner.query("B"), [1, 2])  # still usable


def test_a_second_call_on_a_busy_runner_raises_busy():
    running = threading.Event()

    def schedule(tensor, iteration):  # called inside the run, at every sweep
        running.set()
        return 0.0

    runner = fusejit.Program(FLIP).compile(fusejit.ExecutionConfig(
        mode="fixpoint", max_iters=2**31 - 1, temperature={"A": schedule}))
    result = []

    def work():
        try:
            runner.run()
        except KeyboardInterrupt:
            result.append("interrupted")

    worker = threading.Thread(target=work)
    worker.start()
    try:
        assert running.wait(60)
        with pytest.raises(fusejit.BusyError) as info:
            runner.query("B")
        assert info.value.status == 11
    finally:
        while worker.is_alive():
            runner.interrupt()
            worker.join(0.05)
    assert result == ["interrupted"]
    np.testing.assert_array_equal(runner.query("B"), [1, 2])


# ---- explanations ----

def test_explain_and_trace_are_dicts():
    prog = fusejit.Program(EXAMPLES / "tc.fuse")
    explanation = prog.explain()
    assert [e["lhs"] for e in explanation["equations"]] == ["Edge", "Path", "Path"]
    assert explanation["equations"][2]["projected_axes"] == ["y"]
    assert {o["tensor"]: o["recursive"] for o in explanation["order"]} == {
        "Edge": False, "Path": True}
    assert "Path" in prog.explain(json=False)

    runner = prog.compile(fusejit.ExecutionConfig(mode="fixpoint"))
    runner.run()
    trace = runner.trace()
    assert trace["mode"] == "fixpoint" and trace["converged"] is True
    # the chain 0->1->2->3 needs three sweeps that change Path, then one that does not
    sweeps = [e for e in trace["entries"] if e["name"] == "Path"]
    assert [e["changed"] for e in sweeps] == [3, 2, 1, 0]
    assert json.loads(json.dumps(trace)) == trace
    assert "converged" in runner.trace(json=False)


# ---- files ----

def test_save_and_load_arrays(tmp_path):
    x = np.array([[1.5, -2], [3, 4.25]], np.float32)
    fusejit.save(tmp_path / "x.npy", x)
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), x)
    back = fusejit.load(tmp_path / "x.npy")
    np.testing.assert_array_equal(back, x)
    assert back.dtype == np.float32
    fusejit.save(str(tmp_path / "x.json"), x)
    assert json.loads((tmp_path / "x.json").read_text()) == [[1.5, -2.0], [3.0, 4.25]]
    np.save(tmp_path / "h.npy", np.array([0.5, 65504], np.float16))
    half = fusejit.load(tmp_path / "h.npy")
    assert half.dtype == np.float16 and half.tolist() == [0.5, 65504.0]
    with pytest.raises(fusejit.FuseIOError):
        fusejit.load(tmp_path / "missing.npy")
    with pytest.raises(fusejit.ArgumentError):
        fusejit.save(tmp_path / "x.bmp", x)


def test_save_outputs_as_npz(tmp_path):
    a = np.array([[1, 2], [3, 4]], np.float32)
    out = matmul_program(tmp_path, a, a).compile().run()
    fusejit.save(tmp_path / "out.npz", out)
    with np.load(tmp_path / "out.npz") as z:
        assert sorted(z.files) == ["C", "R"]
        np.testing.assert_array_equal(z["C"], [[7, 10], [15, 22]])
    fusejit.save(tmp_path / "small.npz", out, compress=True)
    with np.load(tmp_path / "small.npz") as z:
        np.testing.assert_array_equal(z["R"], [10, 22])
    fusejit.save(tmp_path / "plain.npz", {"M": a})  # not a run's result: numpy.savez
    with np.load(tmp_path / "plain.npz") as z:
        np.testing.assert_array_equal(z["M"], a)


# ---- the README's example ----

def readme_python_blocks():
    text = (SOURCE_DIR / "README.md").read_text()
    section = re.search(r"^## Python\n(.*?)(?=^## )", text, re.S | re.M)
    return re.findall(r"```python\n(.*?)```", section.group(1), re.S) if section else []


def test_readme_examples_run(monkeypatch, capsys):
    blocks = readme_python_blocks()
    if not blocks:
        pytest.skip("README.md has no Python section yet")
    monkeypatch.chdir(SOURCE_DIR)
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    # each print's expected output is the comment on its line, in order
    printed = capsys.readouterr().out.splitlines()
    expected = [line.split("#", 1)[1].strip() for block in blocks
                for line in block.splitlines() if line.startswith("print(") and "#" in line]
    assert printed and printed == expected


def test_bad_arguments_raise(tmp_path):
    prog = matmul_program(tmp_path, np.ones((2, 2), np.float32), np.ones((2, 2), np.float32))
    runner = prog.compile()
    with pytest.raises(TypeError):
        runner.run(inputs=[("A", np.ones((2, 2)))])
    with pytest.raises(TypeError):
        runner.run(inputs={1: np.ones((2, 2))})
    with pytest.raises((TypeError, ValueError)):
        runner.run(inputs={"A": np.array([object(), object()])})
    with pytest.raises(ValueError):
        runner.run(inputs={"A": np.zeros((1,) * 9, np.float32)})
    with pytest.raises(fusejit.ArgumentError):
        runner.run(inputs={"Nope": np.ones((2, 2), np.float32)})
    with pytest.raises(TypeError):
        prog.compile(config={"mode": "fixpoint"})
    with pytest.raises(TypeError):
        fusejit.ExecutionConfig(temperature=[1, 2])
    with pytest.raises(ValueError):
        prog.compile(backend="torch")
    with pytest.raises(fusejit.FuseIOError):
        fusejit.Program(tmp_path / "absent.fuse")
    # the runner still works after every refusal
    np.testing.assert_array_equal(runner.run()["C"], [[2, 2], [2, 2]])


def test_scalar_input_and_output():
    runner = fusejit.Program('S = "s.npy"\nT = S S\nexport T\n').compile(
        inputs={"S": np.float32(3)})
    out = runner.run(inputs={"S": np.array(4, np.float32)})["T"]
    assert out.shape == () and float(out) == 16


MPI_SCRIPT = """\
import os, sys
import numpy as np
import fusejit
rng = np.random.default_rng(5)
a = rng.standard_normal((300, 200)).astype(np.float32)
b = rng.standard_normal((200, 300)).astype(np.float32)
prog = fusejit.Program("A[i,k] = \\"a.npy\\"\\nB[k,j] = \\"b.npy\\"\\nC[i,j] = A[i,k] B[k,j]\\n"
                       "export C\\n")
inputs = {"A": a, "B": b}
split = prog.compile(inputs=inputs, config=fusejit.ExecutionConfig(distributed=True, threads=1))
one = prog.compile(inputs=inputs, config=fusejit.ExecutionConfig(threads=1))
rank = os.environ.get("OMPI_COMM_WORLD_RANK", "0")
np.save(os.path.join(sys.argv[1], "split%s.npy" % rank), split.run(inputs=inputs)["C"])
np.save(os.path.join(sys.argv[1], "one%s.npy" % rank), one.run(inputs=inputs)["C"])
with open(os.path.join(sys.argv[1], "explain%s.txt" % rank), "w") as f:
    f.write(split.explain_distributed())
root = prog.compile(inputs=inputs, config=fusejit.ExecutionConfig(distributed="rank0", threads=1))
out = root.run(inputs=inputs)
if out:
    np.save(os.path.join(sys.argv[1], "root%s.npy" % rank), out["C"])
with open(os.path.join(sys.argv[1], "root%s.txt" % rank), "w") as f:
    f.write(",".join(sorted(out)))
"""


@pytest.mark.skipif(shutil.which("mpirun") is None, reason="no mpirun (Open MPI)")
@pytest.mark.skipif("asan" in os.environ.get("LD_PRELOAD", ""),
                    reason="mpirun's processes do not take the sanitizer preload")
def test_distributed_config_runs_across_two_ranks(tmp_path):
    assert fusejit.ExecutionConfig().distributed is False
    assert fusejit.ExecutionConfig(distributed=True).distributed is True
    assert fusejit.ExecutionConfig(distributed="rank0").distributed == "rank0"
    with pytest.raises(ValueError, match="rank0"):
        fusejit.Program('S = "s.npy"\nT = S S\nexport T\n').compile(
            inputs={"S": np.float32(3)}, config=fusejit.ExecutionConfig(distributed="rank1"))
    script = tmp_path / "dist.py"
    script.write_text(MPI_SCRIPT)
    env = cli_environment()
    env["OMP_NUM_THREADS"] = "1"
    done = subprocess.run(["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2",
                           sys.executable, str(script), str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=300)
    if "built without MPI" in done.stderr:
        pytest.skip("this build has no MPI")
    assert done.returncode == 0, done.stderr
    rng = np.random.default_rng(5)
    a = rng.standard_normal((300, 200)).astype(np.float32)
    b = rng.standard_normal((200, 300)).astype(np.float32)
    want = a.astype(np.float64) @ b.astype(np.float64)
    one = np.load(tmp_path / "one0.npy")
    np.testing.assert_allclose(one, want, rtol=1e-4, atol=1e-4)
    explain = (tmp_path / "explain0.txt").read_text()
    assert "over 2 MPI ranks" in explain and re.search(r"C\s+rows", explain), explain
    for rank in (0, 1):  # every rank holds the whole result, bit for bit one process's
        split = np.load(tmp_path / ("split%d.npy" % rank))
        assert split.dtype == np.float32
        assert split.tobytes() == one.tobytes()
    # distributed="rank0": the result on rank 0 only, the other rank's run empty
    assert (tmp_path / "root0.txt").read_text() == "C"
    assert (tmp_path / "root1.txt").read_text() == ""
    assert np.load(tmp_path / "root0.npy").tobytes() == one.tobytes()
