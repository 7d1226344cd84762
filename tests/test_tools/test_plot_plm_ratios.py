import json
import os.path as osp
import sys

import matplotlib.image as mpimg

from tool_runner import REPO

sys.path.insert(0, osp.join(REPO, 'tools', 'analysis_tools'))
import plot_plm_ratios  # noqa: E402


def test_plot_writes_a_png_with_one_line_per_class(tmp_path):
    history = dict(
        classes=['head', 'mid', 'tail'], lam=0.01, dataset_ratio=[2., .5, .1],
        epochs=[0, 1, 2],
        ratios=[[2., .5, .1], [1.9, .5, .11], [1.8, .49, .12]])
    path = tmp_path / 'plm_ratios.json'
    path.write_text(json.dumps(history))
    fig = plot_plm_ratios.plot_ratios(history, relative=True)
    lines = fig.axes[0].get_lines()
    assert [line.get_label() for line in lines] == ['head', 'mid', 'tail']
    assert list(lines[0].get_ydata()) == [1.0, 0.95, 0.9]
    out = plot_plm_ratios.main([str(path)])
    assert mpimg.imread(out).ndim == 3
