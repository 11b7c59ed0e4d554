"""plot_loss_cdfs writes a real PNG headlessly and rejects malformed input."""
import numpy as np
import pytest

from feasjax.metrics.plotting import plot_loss_cdfs

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _losses(seed):
    rng = np.random.default_rng(seed)
    return {"train": rng.exponential(0.3, 200), "test": rng.exponential(0.5, 80)}


@pytest.mark.parametrize("log_x", [None, True, False])
def test_png_is_written(tmp_path, log_x):
    per_method = {"erm": _losses(0), "fl": _losses(1), "rfl": _losses(2)}
    per_method["fl"]["train"][:3] = 0.0  # zero losses are drawn on a log axis too
    out = plot_loss_cdfs(per_method, 0.1, tmp_path / "sub" / "cdf.png", log_x=log_x, title="t")
    assert out == tmp_path / "sub" / "cdf.png"
    data = out.read_bytes()
    assert data[:8] == PNG_MAGIC
    assert len(data) > 10_000  # two panels with curves, not an empty canvas


def test_non_finite_losses_do_not_crash(tmp_path):
    losses = _losses(0)
    losses["train"][0] = np.inf
    losses["test"][:] = np.nan
    out = plot_loss_cdfs({"fl": losses}, 0.5, str(tmp_path / "cdf.png"))
    assert out.read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize(
    ("per_method", "epsilon", "match"),
    [
        ({}, 0.1, "per_method must be a non-empty dict"),
        ({"erm": {"train": np.ones(3)}}, 0.1, r"per_method\['erm'\] must have exactly the keys"),
        ({"erm": {"train": np.ones((3, 2)), "test": np.ones(3)}}, 0.1, "must be a 1-D array"),
        ({"erm": {"train": np.ones(3), "test": np.ones(3)}}, 0.0, "epsilon must be a finite"),
    ],
)
def test_bad_input(tmp_path, per_method, epsilon, match):
    with pytest.raises(ValueError, match=match):
        plot_loss_cdfs(per_method, epsilon, tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
