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
    assert len(code.strip().splitlines()) <= 21
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    printed = out.getvalue().strip()
    claimed = re.search(r"It prints `(.*?)`", section).group(1)
    assert printed == claimed
