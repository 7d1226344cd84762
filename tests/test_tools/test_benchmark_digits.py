import json
import os.path as osp
import subprocess
import sys
import textwrap

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
                       extra=(), on_line=None):
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


# -- --dataset cocolike ----------------------------------------------------------
def fake_metrics(work_dir):
    return dict(mAP=50., mAP_few=40., sec_per_iter=0.1)


@pytest.mark.parametrize('dataset', ['digits', 'cocolike'])
def test_every_method_maps_to_a_config_of_its_dataset(dataset):
    methods = benchmark_digits.DATASETS[dataset]['methods']
    for method, config in methods.items():
        assert osp.isfile(osp.join(REPO, config)), config
        assert ('cocolike' in config) == (dataset == 'cocolike'), config
    assert set(benchmark_digits.DATASETS[dataset]['default']) <= set(methods)


def test_cocolike_runs_the_cocolike_configs(monkeypatch, tmp_path):
    commands = []

    def fake_run_train(config, work_dir, log_path, name, threads=None,
                       extra=(), on_line=None):
        commands.append((config, work_dir))

    monkeypatch.setattr(benchmark_digits, 'run_train', fake_run_train)
    monkeypatch.setattr(benchmark_digits, 'final_metrics', fake_metrics)
    monkeypatch.chdir(tmp_path)
    results = benchmark_digits.main(
        ['--dataset', 'cocolike', '--methods', 'bce', 'db', 'natural_bce',
         '--jobs', '1'])
    assert [c for c, _ in commands] == [
        'configs/plm/resnet18_cocolike_mlt_bce.py',
        'configs/db_loss/resnet18_cocolike_mlt_db.py',
        'configs/baseline/resnet18_cocolike_bce.py',
    ]
    assert all(w.startswith(osp.join('work_dirs', 'cocolike_benchmark'))
               for _, w in commands)
    assert list(results) == ['bce', 'db', 'natural_bce']
    tables = (tmp_path / 'work_dirs' / 'cocolike_benchmark' /
              'results.md').read_text().split('\n\n')
    # one table per training set: the natural set, then CocoLike-MLT
    assert tables[0].startswith('COCO-shaped digits, natural long tail')
    assert '| natural_bce' in tables[0] and '| bce' not in tables[0]
    assert tables[1].startswith('CocoLike-MLT')
    assert '| bce' in tables[1] and '| db' in tables[1]
    # the same names keep meaning the digits configs afterwards
    assert benchmark_digits.METHODS['bce'] == \
        'configs/baseline/resnet18_digits_lt_bce.py'


def test_methods_must_belong_to_the_dataset(capsys):
    with pytest.raises(SystemExit):
        benchmark_digits.parse_args(['--dataset', 'cocolike', '--methods',
                                     'plm_focal'])
    assert 'not methods of --dataset cocolike' in capsys.readouterr().err
    args = benchmark_digits.parse_args(['--dataset', 'cocolike'])
    assert args.methods == benchmark_digits.DATASETS['cocolike']['default']
    assert args.work_dir == osp.join('work_dirs', 'cocolike_benchmark')
    for bad in (['--epochs', '0'], ['--jobs', '0'],
                ['--progress-interval', '-1']):
        with pytest.raises(SystemExit):
            benchmark_digits.parse_args(bad)
        assert bad[0] in capsys.readouterr().err


def test_only_configs_with_embedded_backbones_are_pretrained(monkeypatch):
    import mlimb_mm.utils.embedded_weights as ew
    built = []
    # built with the cache's own thread count, not the runs' (--jobs)
    monkeypatch.setattr(ew, 'ensure_embedded',
                        lambda name, on_line=None: built.append(name))
    assert benchmark_digits.embedded_weights('noisy_bce') == [
        'resnet18_printed_digits']
    assert benchmark_digits.embedded_weights('bce') == []
    assert benchmark_digits.ensure_pretrained(
        ['bce', 'noisy_bce', 'noisy_flip_balancemix']) == [
            'resnet18_printed_digits']
    assert built == ['resnet18_printed_digits']
    built.clear()
    assert benchmark_digits.ensure_pretrained(['bce', 'db']) == []
    assert built == []


# -- progress ------------------------------------------------------------------------
class FakeClock:
    def __init__(self):
        self.now = 0.

    def __call__(self):
        return self.now


def test_progress_lines_give_the_epoch_and_the_time_left():
    clock, lines = FakeClock(), []
    progress = benchmark_digits.Progress('bce seed 0', 10, interval=30,
                                         clock=clock, out=lines.append)
    log = '2026/01/01 - mmengine - INFO - Epoch(train)  [{}][{:>2}/20]  lr: 1'
    clock.now = 6.
    progress.feed(log.format(1, 10))  # 5% done in 6 s: 114 s left
    clock.now = 20.
    progress.feed(log.format(1, 20))  # within 30 s of the last line
    clock.now = 60.
    progress.feed(log.format(3, 10))  # 25% done in 60 s: 180 s left
    progress.feed('Epoch(val) [3][5/5]    multi-label/mAP: 61.25  '
                  'multi-label/mAP_many: 70.0')
    progress.feed('an unrelated line')
    assert lines == [
        '[bce seed 0] epoch 1/10, ~1.9 min left',
        '[bce seed 0] epoch 3/10, ~3.0 min left',
        '[bce seed 0] epoch 3/10: validation mAP 61.25',
    ]


def test_max_epochs_reads_the_config_and_the_overrides():
    config = benchmark_digits.DATASETS['cocolike']['methods']['db']
    assert benchmark_digits.max_epochs(config) == 50
    assert benchmark_digits.max_epochs(
        config, ['randomness.seed=1', 'train_cfg.max_epochs=7']) == 7


def test_run_train_logs_and_reports_progress(tmp_path, monkeypatch,
                                            capsys):
    """run_train against a stand-in tools/train.py that logs epochs."""
    (tmp_path / 'tools').mkdir()
    (tmp_path / 'tools' / 'train.py').write_text(textwrap.dedent("""
        import os, sys
        for epoch in (1, 2):
            print(f'Epoch(train) [{epoch}][2/2]  loss: 1.0', flush=True)
        print('threads', os.environ.get('OMP_NUM_THREADS'), flush=True)
        sys.exit(int('fail' in sys.argv[1]))
        """))
    monkeypatch.setattr(benchmark_digits, 'REPO', str(tmp_path))
    seen = []
    log = tmp_path / 'run.log'
    benchmark_digits.run_train('ok.py', str(tmp_path / 'w'), str(log), 'x',
                               threads=1, on_line=seen.append)
    assert seen == ['Epoch(train) [1][2/2]  loss: 1.0\n',
                    'Epoch(train) [2][2/2]  loss: 1.0\n', 'threads 1\n']
    assert log.read_text() == ''.join(seen)
    with pytest.raises(subprocess.CalledProcessError):
        benchmark_digits.run_train('fail.py', str(tmp_path / 'w'), str(log),
                                   'x')
    assert f'[x] failed with exit code 1; its output: {log}' in \
        capsys.readouterr().out


def test_final_metrics_keep_the_prefix_of_a_second_metric(tmp_path):
    run = tmp_path / 'run' / '20260101_000000' / 'vis_data'
    run.mkdir(parents=True)
    records = [
        {'loss': 1.0, 'time': 0.2, 'step': 1},
        {'loss': 0.9, 'time': 0.4, 'step': 2},
        {'multi-label/mAP': 55.0, 'multi-label/f1_least': 10.0,
         'least5/f1_least': 12.5, 'step': 2},
    ]
    (run / 'scalars.json').write_text(
        '\n'.join(json.dumps(r) for r in records))
    metrics = benchmark_digits.final_metrics(str(tmp_path / 'run'))
    assert metrics['mAP'] == 55.0 and metrics['f1_least'] == 10.0
    assert metrics['least5/f1_least'] == 12.5
    assert metrics['sec_per_iter'] == pytest.approx(0.3)
    table = benchmark_digits.format_table(
        {'bce': [dict(metrics, minutes=1.)]}, [0], 'a setting')
    assert 'F1 least-5' in table and 'R least-5' not in table


def test_methods_with_one_config_share_one_run(monkeypatch, tmp_path):
    trained = []

    def fake_run_train(config, work_dir, log_path, name, threads=None,
                       extra=(), on_line=None):
        trained.append(osp.basename(work_dir))

    monkeypatch.setattr(benchmark_digits, 'run_train', fake_run_train)
    monkeypatch.setattr(benchmark_digits, 'final_metrics', fake_metrics)
    monkeypatch.setattr(benchmark_digits, 'ensure_pretrained',
                        lambda *args: None)
    argv = ['--dataset', 'cocolike', '--jobs', '1', '--seeds', '0', '1',
            '--work-dir', str(tmp_path), '--methods']
    results = benchmark_digits.main(
        argv + ['pal30_full', 'pal30_an', 'pal60_full'])
    # pal30_full only names pal60_full's config; pal30_an has its own
    assert sorted(trained) == [
        'pal30_an_seed0', 'pal30_an_seed1', 'pal30_full_seed0',
        'pal30_full_seed1'
    ]
    assert results['pal60_full'] == [
        dict(run, same_run_as='pal30_full') for run in results['pal30_full']
    ]
    shared = json.loads((tmp_path / 'pal60_full_seed1.json').read_text())
    assert shared['same_run_as'] == 'pal30_full'
    # --reuse finds the shared run under another name of the same config,
    # and never a run of another config
    trained.clear()
    results = benchmark_digits.main(argv + ['spl_full', 'spl_an', '--reuse'])
    assert sorted(trained) == ['spl_an_seed0', 'spl_an_seed1']
    assert results['spl_full'][1]['same_run_as'] == 'pal30_full'
    assert (tmp_path / 'spl_full_seed0.json').exists()


def test_same_runs_compares_resolved_configs():
    with benchmark_digits.dataset_methods('cocolike'):
        run_of = benchmark_digits.same_runs(
            ['pal60_full', 'pal30_full', 'spl_full', 'pal30_an', 'pal60_an'])
    assert run_of == dict(pal60_full='pal60_full', pal30_full='pal60_full',
                          spl_full='pal60_full', pal30_an='pal30_an',
                          pal60_an='pal60_an')
