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
