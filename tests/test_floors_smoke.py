"""At the dependency floors (.ci/floors.txt), README's ``nnx.Optimizer`` train step runs and trains.

tests/test_readme.py checks the exact numbers README prints, which move with the XLA build (jaxlib
0.10.1 and 0.10.2 already differ in the third decimal), so CI's floors job deselects that check and
runs this one instead: same code, same printed line, bounds instead of digits. Only the floors job
sets FEASJAX_FLOORS=1; elsewhere the exact check covers it.
"""
import contextlib
import io
import os
import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"

pytestmark = pytest.mark.skipif(os.environ.get("FEASJAX_FLOORS") != "1",
                                reason="floors job only (FEASJAX_FLOORS=1); test_readme.py checks exact output")


def test_readme_nnx_optimizer_step_trains_at_the_floors():
    section = README.read_text().split("## Feasible Learning in your own `nnx.Optimizer` train step", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), {})
    printed = out.getvalue().strip()
    match = re.fullmatch(r"train max loss (\d+\.\d{3}), feasible (\d+\.\d)%", printed)
    assert match, printed
    max_loss, feasible = float(match.group(1)), float(match.group(2))
    assert max_loss < 1.0 and feasible >= 99.0, printed  # README: 0.155, 99.9% (floors: 0.174, 99.6%)
