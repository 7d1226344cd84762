import json

import numpy as np
import pytest
import torch

from script_loader import load_script

from mlimb_mm.models.utils.partial_labels import pseudo_label_quality

tool = load_script('tools/analysis_tools/pseudo_label_quality.py')


def _history(seed, epochs):
    """A history as PseudoLabelHook writes it, from pseudo_label_quality
    on random labels."""
    rng = np.random.default_rng(seed)
    observed = torch.as_tensor(rng.choice([-1, 0, 1], (40, 4)))
    clean = torch.as_tensor(rng.integers(0, 2, (40, 4)))
    groups = {'many': np.array([0, 1]), 'few': np.array([2, 3])}
    entries = []
    for epoch in epochs:
        pseudo = torch.as_tensor(rng.random((40, 4)))
        entry = pseudo_label_quality(pseudo, observed, clean, groups)
        entry['epoch'] = epoch
        entries.append(entry)
    return dict(threshold=0.5, group_thresholds=[20, 100], epochs=entries)


def test_rows_hold_each_run_and_the_groups(tmp_path):
    runs = [_history(0, [1, 2, 3, 4]), _history(1, [1, 2, 3])]
    rows = tool.epoch_rows(runs, every=2)
    assert [epoch for epoch, _ in rows] == [2, 3]  # every 2nd, and the last
    epoch, values = rows[0]
    assert values['accuracy'] == [runs[0]['epochs'][1]['accuracy'],
                                  runs[1]['epochs'][1]['accuracy']]
    assert values['few accuracy'][1] == \
        runs[1]['epochs'][1]['groups']['few']['accuracy']
    paths = []
    for i, run in enumerate(runs):
        paths.append(tmp_path / f'run{i}.json')
        paths[-1].write_text(json.dumps(run))
    table = tool.main([str(p) for p in paths])
    first = np.array(values['mean'])
    assert f'| 2 | {first.mean():.3f} ± {first.std():.3f} |' in table
    assert 'many accuracy' in table.splitlines()[0]


def test_missing_values_and_bad_files(tmp_path):
    assert tool.format_value([None, None]) == '-'
    assert tool.format_value([0.25, None]) == '0.250'
    bad = tmp_path / 'other.json'
    bad.write_text(json.dumps({'ratios': []}))
    with pytest.raises(ValueError, match='other.json'):
        tool.main([str(bad)])
    with pytest.raises(ValueError, match='no epoch in common'):
        tool.epoch_rows([_history(0, [1]), _history(1, [2])])
