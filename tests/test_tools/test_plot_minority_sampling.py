import json
import os.path as osp
import sys

import matplotlib.image as mpimg
import numpy as np
import pytest

from tool_runner import REPO

sys.path.insert(0, osp.join(REPO, 'tools', 'analysis_tools'))
import plot_minority_sampling  # noqa: E402


def test_plot_one_line_per_class_relative_to_uniform(tmp_path):
    record = dict(classes=['head', 'mid', 'tail'],
                  uniform_class_mass=[0.8, 0.2, 0.05], epochs=[1, 2],
                  class_mass=[[0.6, 0.3, 0.2], [0.8, 0.2, 0.1]])
    np.testing.assert_allclose(
        plot_minority_sampling.oversampling(record),
        [[0.75, 1.5, 4.0], [1.0, 1.0, 2.0]])
    fig = plot_minority_sampling.plot_sampling(record)
    lines = [line for line in fig.axes[0].get_lines()
             if line.get_label() in record['classes']]
    assert [line.get_label() for line in lines] == ['head', 'mid', 'tail']
    np.testing.assert_allclose(lines[2].get_ydata(), [4.0, 2.0])
    path = tmp_path / 'balancemix.json'
    path.write_text(json.dumps(dict(refinements=[],
                                    minority_sampling=record)))
    out = plot_minority_sampling.main([str(path)])
    assert mpimg.imread(out).ndim == 3
    path.write_text(json.dumps(dict(refinements=[])))
    with pytest.raises(KeyError, match='minority'):
        plot_minority_sampling.main([str(path)])


def test_many_classes_get_a_colour_bar_instead_of_a_legend():
    num_classes = 80
    uniform = np.linspace(1.0, 0.01, num_classes)
    record = dict(classes=[f'c{k}' for k in range(num_classes)],
                  uniform_class_mass=uniform.tolist(), epochs=[1, 2],
                  class_mass=[(uniform * 1.01).tolist(), uniform.tolist()])
    fig = plot_minority_sampling.plot_sampling(record)
    curves, colour_bar = fig.axes
    assert curves.get_legend() is None
    assert len(curves.get_lines()) == num_classes + 1  # + the line at 1
    assert colour_bar.get_ylim() == pytest.approx((0.5, num_classes + 0.5))
    # the head's curve is the darkest colour of the bar, the tail's the last
    head, tail = curves.get_lines()[0], curves.get_lines()[num_classes - 1]
    assert head.get_label() == 'c0' and tail.get_label() == 'c79'
    np.testing.assert_allclose(head.get_ydata(), [1.01, 1.0])
