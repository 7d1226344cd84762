import os.path as osp
import sys

import pytest
from mmengine.config import Config

from tool_runner import REPO

sys.path.insert(0, osp.join(REPO, 'tools'))
import benchmark_digits  # noqa: E402


def refines_labels(config_path):
    """Whether a config's BalanceMixHook runs the refinement pass."""
    cfg = Config.fromfile(osp.join(REPO, config_path))
    for hook in cfg.get('custom_hooks', []):
        if hook['type'] == 'BalanceMixHook':
            return any(
                hook.get(key, True)
                for key in ('use_clean', 'use_relabel', 'use_ambiguous'))
    return False


def test_refining_methods_are_the_configs_with_a_refinement_pass():
    refining = {
        method
        for method, path in benchmark_digits.METHODS.items()
        if method.startswith('noisy_') and refines_labels(path)
    }
    assert refining == benchmark_digits.REFINING_METHODS
    assert set(benchmark_digits.DEFAULT_METHODS) <= set(
        benchmark_digits.METHODS)


def test_refining_runs_start_first_and_tables_keep_the_asked_order(
        monkeypatch, tmp_path):
    started = []

    def fake_train(method, seed, args, threads=None):
        started.append((method, seed))
        return dict(mAP=float(seed), mAP_few=1., sec_per_iter=0.1,
                    minutes=1.)

    monkeypatch.setattr(benchmark_digits, 'train', fake_train)
    monkeypatch.setattr(benchmark_digits, 'ensure_pretrained',
                        lambda *args: None)
    results = benchmark_digits.main([
        '--methods', 'noisy_bce', 'noisy_balancemix', '--seeds', '0', '1',
        '--jobs', '1', '--work-dir',
        str(tmp_path)
    ])
    assert started == [('noisy_balancemix', 0), ('noisy_balancemix', 1),
                       ('noisy_bce', 0), ('noisy_bce', 1)]
    assert list(results) == ['noisy_bce', 'noisy_balancemix']
    assert [run['mAP'] for run in results['noisy_bce']] == [0., 1.]
    table = (tmp_path / 'results.md').read_text()
    assert table.index('| noisy_bce') < table.index('| noisy_balancemix')


@pytest.mark.parametrize('method', ['noisy_bce', 'noisy_balancemix'])
def test_noisy_configs_share_one_schedule(method):
    cfg = Config.fromfile(osp.join(REPO, benchmark_digits.METHODS[method]))
    assert cfg.train_cfg.max_epochs == cfg.param_scheduler[-1]['end'] == 90
