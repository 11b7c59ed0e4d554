"""plot_loss_cdfs and plot_loss_survival write real PNGs headlessly, the survival figure has
the axes that show the tail (log scales, ε line, title, clip floor), bad input is refused."""
import numpy as np
import pytest

from feasjax.metrics.plotting import loss_survival_figure, plot_loss_cdfs, plot_loss_survival

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


def _curve(ax, method):
    """The step line of ``method`` in a panel, and its end marker."""
    steps = [ln for ln in ax.get_lines() if ln.get_label().startswith(f"{method}:")]
    index = ax.get_lines().index(steps[0])
    return steps[0], ax.get_lines()[index + 1]


def test_survival_figure_shows_where_each_tail_ends():
    per_method = {"erm": {"train": np.array([0.0, 1e-8, 0.05, 0.2, 1.0]), "test": np.ones(4)},
                  "fl": {"train": np.array([0.01, 0.02, 0.03, 0.04, 0.09]),
                         "test": np.full(4, 2.0)}}
    fig = loss_survival_figure(per_method, 0.1, title="digits, 30 epochs, seed 0")
    assert fig.get_suptitle() == "Per-sample loss tails: digits, 30 epochs, seed 0"
    assert any("clipped to 1e-06" in text.get_text() for text in fig.texts)  # the caption
    train, test = fig.axes
    for ax in (train, test):
        assert ax.get_xscale() == "log" and ax.get_yscale() == "log"
        eps_lines = [ln for ln in ax.get_lines() if list(ln.get_xdata()) == [0.1, 0.1]]
        assert len(eps_lines) == 1 and eps_lines[0].get_label() == "ε = 0.1"
    erm, erm_end = _curve(train, "erm")
    # S(t) = #{loss > t} / 5 after each sorted loss; the two below the floor sit at 1e-6, and
    # the curve stops at the largest loss with the height of that one sample, 1/5.
    np.testing.assert_allclose(erm.get_xdata(), [1e-6, 1e-6, 1e-6, 0.05, 0.2, 1.0])
    np.testing.assert_allclose(erm.get_ydata(), [1.0, 0.8, 0.6, 0.4, 0.2, 0.2])
    fl, fl_end = _curve(train, "fl")
    assert list(fl_end.get_xdata()) == [0.09] < list(erm_end.get_xdata()) == [1.0]
    assert erm.get_label() == "erm: max 1, 40.0% > ε"
    assert fl.get_label() == "fl: max 0.09, 0.0% > ε"
    assert train.get_ylim()[0] <= 0.2 / 2  # the 1/N ends are inside the axes


def test_survival_png_and_bad_floor(tmp_path):
    out = plot_loss_survival({"fl": _losses(0)}, 0.1, tmp_path / "s.png", title="t")
    assert out.read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(ValueError, match=r"floor must be a finite number in \(0, epsilon=0.1\)"):
        loss_survival_figure({"fl": _losses(0)}, 0.1, floor=0.0)
