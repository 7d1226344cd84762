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
