import os.path as osp
import sys

import pytest
from mmengine.config import Config

from tool_runner import REPO

sys.path.insert(0, osp.join(REPO, 'tools'))
import benchmark_digits  # noqa: E402


@pytest.mark.parametrize('method,refines', [
    ('bce', False), ('noisy_bce', False), ('noisy_mixup', False),
    ('noisy_minority', False), ('noisy_clean', True), ('noisy_relabel', True),
    ('noisy_balancemix', True), ('noisy_flip_balancemix', True)
])
def test_refines_labels_reads_the_balancemix_hook(method, refines):
    assert benchmark_digits.refines_labels(method) is refines


def test_default_methods_exist():
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


def test_cfg_options_reach_every_run_and_the_table_title(monkeypatch,
                                                         tmp_path):
    commands = []

    def fake_run_train(config, work_dir, log_path, name, threads=None,
                       extra=()):
        commands.append((config, list(extra)))

    monkeypatch.setattr(benchmark_digits, 'run_train', fake_run_train)
    monkeypatch.setattr(
        benchmark_digits, 'final_metrics',
        lambda work_dir: dict(mAP=50., mAP_few=40., sec_per_iter=0.1))
    monkeypatch.setattr(benchmark_digits, 'ensure_pretrained',
                        lambda *args: None)
    benchmark_digits.main([
        '--methods', 'noisy_bce', 'noisy_mixup', '--jobs', '1',
        '--work-dir', str(tmp_path), '--cfg-options',
        'train_dataloader.dataset.rho=0.2'
    ])
    assert [config for config, _ in commands] == [
        benchmark_digits.METHODS['noisy_bce'],
        benchmark_digits.METHODS['noisy_mixup']
    ]
    for _, extra in commands:
        assert extra[0] == '--cfg-options'
        assert 'randomness.seed=0' in extra
        assert extra[-1] == 'train_dataloader.dataset.rho=0.2'
    title = (tmp_path / 'results.md').read_text().splitlines()[0]
    assert ('overridden by --cfg-options train_dataloader.dataset.rho=0.2:'
            in title)


def test_cfg_options_must_be_key_value_pairs(capsys):
    with pytest.raises(SystemExit):
        benchmark_digits.parse_args(['--cfg-options', 'rho'])
    assert 'KEY=VALUE' in capsys.readouterr().err
