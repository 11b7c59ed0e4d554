"""The README's Feasible Learning loop runs and prints what the README says it prints."""
import contextlib
import io
import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_fl_loop_runs_and_matches_its_stated_output():
    text = README.read_text()
    section = text.split("## Feasible Learning in 20 lines", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    lines = [ln for ln in code.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    assert len(lines) <= 20  # lines of code: blank lines and comments do not count
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    printed = out.getvalue().strip()
    claimed = re.search(r"It prints `(.*?)`", section).group(1)
    assert printed == claimed


def test_readme_nnx_optimizer_step_runs_and_matches_its_stated_output():
    text = README.read_text()
    section = text.split("## Feasible Learning in your own `nnx.Optimizer` train step", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(code.strip().splitlines()) <= 30
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    assert out.getvalue().strip() == re.search(r"It prints `(.*?)`", section).group(1)


def test_readme_engine_section_runs_the_nnx_step_with_checkpoints_a_mesh_and_a_sweep(
        tmp_path, monkeypatch):
    text = README.read_text()
    nnx_section = text.split("## Feasible Learning in your own `nnx.Optimizer` train step", 1)[1]
    section = text.split("## One engine for every step: `fj.train`", 1)[1]
    setup = re.search(r"```python\n(.*?)```", nnx_section, re.S).group(1)
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)  # the checkpoints go to runs/ck here
    namespace = {}
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(setup, "README.md", "exec"), namespace)
    out = io.StringIO()
    for _ in range(2):  # the second run finds the finished checkpoint and returns it
        with contextlib.redirect_stdout(out):
            exec(compile(code, "README.md", "exec"), namespace)
    first, second = out.getvalue().strip().splitlines()
    assert first == second and re.fullmatch(r"max multiplier \d+\.\d\d, seeds' mean loss "
                                            r"\[[\d. ]+\]", first)
    assert (tmp_path / "runs" / "ck").is_dir()
