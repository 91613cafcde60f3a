"""`plot_runs` / `write_report` on generated runs (no training): what a figure shows
that can be checked without eyes (scales, lines, legend placement, formats) and the
report's numbers against the generated records."""

import json

import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg

import corridors.train as ct
from corridors._checks import InvalidInputError
from corridors.train._run_plots import METRICS, NEAR_FINAL, build_figures
from corridors.train._run_report import write_report

from .run_fixtures import STEPS, STEPS_PER_EPOCH, write_run, write_sweep


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    # CLR and sgd at lr 0.03 and 0.3, 2 seeds each: 3 families.
    return write_sweep(tmp_path_factory.mktemp("runs"))


@pytest.fixture(scope="module")
def figures(sweep):
    return build_figures([sweep])


def panels(figure) -> dict:
    return {axes.get_label(): axes for axes in figure.axes}


def test_every_quantity_gets_a_figure_with_the_expected_panels(figures):
    assert set(figures) == set(METRICS)
    expected = {
        "drift": {"drift", "relative_drift"},
        "rsi_eb": {"rsi", "eb"},
        "spectrum": {"hessian_trace", "block_sharpness"},
    }
    for name, figure in figures.items():
        assert set(panels(figure)) == expected.get(name, {name})


def test_scales_follow_the_data_range_unless_forced(sweep, figures):
    scale = {
        label: axes.get_yscale()
        for figure in figures.values()
        for label, axes in panels(figure).items()
    }
    # Loss 2 → 0.02, drift and h (0.03…0.5) span more than 10×: log (the sharpness
    # and the spectrum, 0.2·2/h … 2/h over h = 0.03 and 0.3, too); accuracy is a
    # fraction: linear; RSI/EB are always log.
    assert scale == {
        "loss": "log", "lr": "log", "accuracy": "linear", "corridor_score": "log",
        "drift": "log", "relative_drift": "log", "sharpness": "log", "rsi": "log",
        "eb": "log", "hessian_trace": "log", "block_sharpness": "log",
    }  # fmt: skip
    linear = build_figures([sweep], logy=False, layout="panels")["training"]
    assert {axes.get_yscale() for axes in linear.axes} == {"linear"}
    log = build_figures([sweep], logy=True, layout="panels")["training"]
    assert {axes.get_yscale() for axes in log.axes} == {"log"}


def test_one_line_per_family_and_curve(figures):
    lines = {
        label: len(axes.get_lines())
        for figure in figures.values()
        for label, axes in panels(figure).items()
    }
    # 3 families; loss and h: training batches + measurement batch; drift: measured +
    # predicted; sharpness: measured + the 2/h line (each inside the data range).
    assert lines == {
        "loss": 6, "lr": 6, "accuracy": 3, "corridor_score": 3, "drift": 6,
        "relative_drift": 6, "sharpness": 6, "hessian_trace": 3,
        "block_sharpness": 3, "rsi": 3, "eb": 3,
    }  # fmt: skip
    loss = panels(figures["loss"])["loss"]
    assert {line.get_linestyle() for line in loss.get_lines()} == {"-", "--"}
    # One colour per family in every panel.
    colours = [line.get_color() for line in loss.get_lines()]
    assert len(set(colours)) == 3


def test_legend_sits_outside_every_panel_and_says_n(figures):
    for figure in figures.values():
        FigureCanvasAgg(figure).draw()
        renderer = figure.canvas.get_renderer()
        (legend,) = figure.legends
        box = legend.get_window_extent(renderer)
        for axes in figure.axes:
            assert not box.overlaps(axes.get_window_extent(renderer)), axes
        texts = [text.get_text() for text in legend.get_texts()]
        assert "CLR (n = 2)" in texts and "sgd lr=0.3 (n = 2)" in texts


def test_caption_and_epoch_axis(sweep):
    figure = build_figures([sweep], metrics=["loss"])["loss"]
    caption = figure.get_supxlabel()
    for part in ("model mlp", "data digits", "batch 128", "optimizer clr/sgd",
                 "n = 2 seed(s)"):  # fmt: skip
        assert part in caption
    (axes,) = figure.axes
    (top,) = axes.child_axes  # the secondary epoch axis
    FigureCanvasAgg(figure).draw()
    step_limits = np.array(axes.get_xlim())
    np.testing.assert_allclose(top.get_xlim(), step_limits / STEPS_PER_EPOCH)


def test_rsi_eb_are_masked_near_the_final_iterate(sweep):
    figure = build_figures([sweep], metrics=["rsi_eb"])["rsi_eb"]
    for axes in figure.axes:
        last = max(line.get_xdata().max() for line in axes.get_lines())
        assert last < (1 - NEAR_FINAL) * STEPS
        notes = " ".join(text.get_text() for text in axes.texts)
        assert "masked" in notes


def test_spectrum_panels_draw_the_trace_and_the_largest_block(tmp_path):
    # The fixture's trace is 10λ and its blocks 0.6λ, 0.3λ and a failed one (None):
    # one seed, so each line is the record's value itself.
    run = write_run(tmp_path / "sgd-lr0.3-seed0", lr=0.3)
    records = [json.loads(line) for line in (run / "metrics.jsonl").open()]
    sharp = [r for r in records if r["kind"] == "measure" and "sharpness" in r]
    figure = build_figures([tmp_path], metrics=["spectrum"])["spectrum"]
    by_label = panels(figure)
    for label, factor in (("hessian_trace", 10.0), ("block_sharpness", 0.6)):
        (line,) = by_label[label].get_lines()
        np.testing.assert_allclose(line.get_xdata(), [r["step"] for r in sharp])
        np.testing.assert_allclose(
            line.get_ydata(), [factor * r["sharpness"] for r in sharp], rtol=1e-12
        )


def test_stability_lines_only_inside_the_data_range(tmp_path):
    write_run(tmp_path / "sgd-lr0.3-seed0", lr=0.3)
    # 2/h = 667 while this run's sharpness stays below 5: no line, a note instead.
    write_run(tmp_path / "sgd-lr0.003-seed0", lr=0.003, sharpness_limit=5.0)
    figure = build_figures([tmp_path], metrics=["sharpness"])["sharpness"]
    (axes,) = figure.axes
    dotted = [line for line in axes.get_lines() if line.get_linestyle() == ":"]
    assert len(dotted) == 1
    np.testing.assert_allclose(np.nanmedian(dotted[0].get_ydata()), 2 / 0.3, rtol=0.1)
    high = axes.get_ylim()[1]
    assert high < 2 / 0.003
    assert "off the scale" in " ".join(text.get_text() for text in axes.texts)


@pytest.mark.parametrize(
    "form, magic", [("png", b"\x89PNG"), ("pdf", b"%PDF"), ("svg", b"<svg")]
)
def test_formats_and_layouts(sweep, tmp_path, form, magic):
    written = ct.plot_runs(
        [sweep], tmp_path, format=form, layout="panels", metrics=["loss", "drift"]
    )
    assert [path.name for path in written] == [f"training.{form}"]
    head = written[0].read_bytes()[:400]
    assert head.startswith(magic) if form != "svg" else magic in head


def test_bad_options_name_the_function(sweep, tmp_path):
    for options in ({"format": "gif"}, {"layout": "grid"}, {"metrics": ["nope"]},
                    {"logy": "yes"}):  # fmt: skip
        with pytest.raises(InvalidInputError, match=r"^plot_runs: `"):
            ct.plot_runs([sweep], tmp_path, **options)


def test_report_table_matches_the_records(sweep):
    report = write_report(sweep).read_text()
    rows = [line for line in report.splitlines() if line.startswith("| `")]
    assert len(rows) == 6
    (row,) = [line for line in rows if "`sgd-lr0.3-seed1`" in line]
    cells = [cell.strip() for cell in row.strip("|").split("|")]
    records = [
        json.loads(line)
        for line in (sweep / "sgd-lr0.3-seed1" / "metrics.jsonl")
        .read_text()
        .splitlines()
    ]
    losses = [r["loss"] for r in records if r["kind"] == "train"]
    scores = [r["corridor_score"] for r in records if r["kind"] == "measure"]
    assert float(cells[1]) == pytest.approx(losses[-1], rel=1e-3)
    assert float(cells[2]) == pytest.approx(min(losses), rel=1e-3)
    assert float(cells[5]) == pytest.approx(np.mean(scores), rel=1e-3)
    assert float(cells[9]) == pytest.approx(2 / 0.3, rel=1e-3)
    for name in METRICS:
        assert f"(figures/{name}.png)" in report
        assert (sweep / "figures" / f"{name}.png").stat().st_size > 0


def test_report_names_runs_trained_with_other_settings(tmp_path):
    # config.toml holds the latest invocation only: runs from an earlier one into
    # the same folder (here the SGD sweep, then a CLR run) are named, not misdescribed.
    sweep = write_sweep(tmp_path / "sweep", seeds=(0,))
    (sweep / "config.toml").write_text(
        'model = "mlp"\ndataset = "digits"\noptimizer = "clr"\n'
    )
    report = write_report(sweep).read_text()
    (line,) = [line for line in report.splitlines() if "earlier one" in line]
    assert "`sgd-lr0.03-seed0`" in line and "`sgd-lr0.3-seed0`" in line
    assert "clr-seed0" not in line
    (sweep / "config.toml").write_text(
        'model = "mlp"\ndataset = "digits"\noptimizer = "sgd"\n'
    )
    (line,) = [
        line
        for line in write_report(sweep).read_text().splitlines()
        if "earlier one" in line
    ]
    assert "`clr-seed0`" in line and "sgd-lr" not in line
