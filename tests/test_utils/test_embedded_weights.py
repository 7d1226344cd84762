"""``embedded://NAME`` checkpoints: built once on first use (a fake, tiny
pre-training here), cached in $MLIMB_MM_HOME, loaded like any pre-trained
checkpoint, one build across concurrent users."""
import os
import os.path as osp
import textwrap
import threading
import time

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import CheckpointLoader
from mmpretrain.registry import MODELS

import mlimb_mm  # noqa: F401
from mlimb_mm.utils import embedded_weights as ew

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MODEL_CONFIG = osp.join(REPO, 'configs/_base_/models/resnet18_digits.py')


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv('MLIMB_MM_HOME', str(tmp_path / 'home'))
    return tmp_path / 'home'


def digits_model():
    cfg = Config.fromfile(MODEL_CONFIG)
    return MODELS.build(cfg.model)


def fake_pretraining(calls, delay=0.):
    """A builder that 'trains' by saving a digits model with seeded weights
    (as MMEngine does: state_dict, meta, message_hub) and counts its
    calls."""

    def train(config, work_dir, log_file, on_line, threads=None):
        calls.append(config)
        time.sleep(delay)
        os.makedirs(work_dir, exist_ok=True)
        torch.manual_seed(123)
        model = digits_model()
        for param in model.parameters():
            param.data.normal_()
        path = osp.join(work_dir, 'epoch_1.pth')
        torch.save(dict(state_dict=model.state_dict(), meta=dict(epoch=1),
                        optimizer=dict(state={})), path)
        with open(osp.join(work_dir, 'last_checkpoint'), 'w') as f:
            f.write(path)
        on_line('Epoch(train) [1][1/1]  loss: 0.1\n')
        return path

    return train


def test_weights_are_built_with_one_thread_count(monkeypatch, home):
    """Whoever asks, the pre-training runs with BUILD_THREADS threads: the
    thread count changes the float sums and so the cached weights."""
    threads = []

    def train(config, work_dir, log_file, on_line, threads_=None):
        threads.append(threads_)
        return fake_pretraining([])(config, work_dir, log_file, on_line)

    monkeypatch.setattr(ew, 'train_embedded', train)
    ew.ensure_embedded('resnet18_printed_digits', on_line=lambda line: None)
    assert threads == [ew.BUILD_THREADS] == [1]


def test_the_scheme_is_registered():
    loader = CheckpointLoader._get_checkpoint_loader(
        'embedded://resnet18_printed_digits')
    assert loader is ew.load_from_embedded


def test_home_defaults_to_the_user_cache(monkeypatch):
    monkeypatch.delenv('MLIMB_MM_HOME')
    assert ew.mlimb_mm_home() == osp.expanduser('~/.cache/mlimb_mm')


def test_a_config_starting_from_embedded_weights_builds_them_once(
        monkeypatch, home):
    calls = []
    monkeypatch.setattr(ew, 'train_embedded', fake_pretraining(calls))
    cfg = Config.fromfile(MODEL_CONFIG)
    cfg.model.backbone.init_cfg = dict(
        type='Pretrained', checkpoint='embedded://resnet18_printed_digits',
        prefix='backbone.')
    model = MODELS.build(cfg.model)
    model.init_weights()
    assert len(calls) == 1
    assert calls[0] == osp.join(REPO,
                                'configs/pretrain/resnet18_printed_digits.py')
    # the backbone holds the pre-trained weights, the head does not
    torch.manual_seed(123)
    reference = digits_model()
    for param in reference.parameters():
        param.data.normal_()
    expected = reference.backbone.state_dict()
    for key, value in model.backbone.state_dict().items():
        torch.testing.assert_close(value, expected[key])
    # cached: only the weights are kept, and a second model loads them
    # without training again
    cached = ew.embedded_paths('resnet18_printed_digits')['checkpoint']
    assert cached.startswith(str(home))
    saved = torch.load(cached, weights_only=True)
    assert set(saved) == {'state_dict', 'meta'}
    assert saved['meta']['embedded'] == 'resnet18_printed_digits'
    again = MODELS.build(cfg.model)
    again.init_weights()
    assert len(calls) == 1
    torch.testing.assert_close(again.backbone.conv1.weight,
                               model.backbone.conv1.weight)


def test_concurrent_users_build_once(monkeypatch):
    calls = []
    monkeypatch.setattr(ew, 'train_embedded',
                        fake_pretraining(calls, delay=0.5))
    results = []

    def load():
        results.append(ew.ensure_embedded('resnet18_printed_digits'))

    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert len(set(results)) == 1 and osp.isfile(results[0])


def test_a_failed_build_leaves_nothing_and_is_retried(monkeypatch):
    def broken(config, work_dir, log_file, on_line, threads=None):
        raise RuntimeError('pre-training failed')

    monkeypatch.setattr(ew, 'train_embedded', broken)
    with pytest.raises(RuntimeError, match='pre-training failed'):
        ew.ensure_embedded('resnet18_printed_digits')
    assert not osp.exists(
        ew.embedded_paths('resnet18_printed_digits')['checkpoint'])
    calls = []
    monkeypatch.setattr(ew, 'train_embedded', fake_pretraining(calls))
    assert osp.isfile(ew.ensure_embedded('resnet18_printed_digits'))
    assert len(calls) == 1


def test_unknown_names_are_refused_with_the_known_ones():
    with pytest.raises(KeyError, match='resnet18_printed_digits'):
        CheckpointLoader.load_checkpoint('embedded://no_such_weights')
    with pytest.raises(ValueError, match='name'):
        ew.register_embedded('a/b', 'x.py')


def test_the_cache_key_follows_the_resolved_config(tmp_path, monkeypatch):
    config = tmp_path / 'pretrain.py'
    config.write_text('# comment\nmodel = dict(type="A")\n')
    monkeypatch.setitem(ew.EMBEDDED_MODELS, 'tiny',
                        dict(config=str(config), about='a test'))
    first = ew.embedded_paths('tiny')['checkpoint']
    config.write_text('# another comment\nmodel = dict(type="A")\n')
    assert ew.embedded_paths('tiny')['checkpoint'] == first
    config.write_text('model = dict(type="B")\n')
    assert ew.embedded_paths('tiny')['checkpoint'] != first
    config.unlink()
    with pytest.raises(FileNotFoundError, match='pretrain.py'):
        ew.embedded_paths('tiny')


def test_the_builder_runs_train_py_and_shows_its_output(tmp_path,
                                                       monkeypatch):
    """train_embedded with a stand-in tools/train.py: the output reaches
    on_line and the log, launcher variables do not reach the child, the
    last checkpoint is returned; a failure names the log."""
    fake_repo = tmp_path / 'repo'
    (fake_repo / 'tools').mkdir(parents=True)
    (fake_repo / 'tools' / 'train.py').write_text(
        textwrap.dedent('''
        import os, sys
        config, work_dir = sys.argv[1], sys.argv[3]
        print('training', config, 'RANK' in os.environ, flush=True)
        if config.endswith('broken.py'):
            sys.exit(3)
        os.makedirs(work_dir, exist_ok=True)
        open(os.path.join(work_dir, 'epoch_2.pth'), 'w').close()
        with open(os.path.join(work_dir, 'last_checkpoint'), 'w') as f:
            f.write(os.path.join(work_dir, 'epoch_2.pth'))
        print('Epoch(train) [2][5/5]', flush=True)
        '''))
    monkeypatch.setattr(ew, 'REPO', str(fake_repo))
    monkeypatch.setenv('RANK', '1')
    lines = []
    log = tmp_path / 'out.log'
    path = ew.train_embedded('pre.py', str(tmp_path / 'work'), str(log),
                             lines.append, threads=1)
    assert path == str(tmp_path / 'work' / 'epoch_2.pth')
    assert lines == ['training pre.py False\n', 'Epoch(train) [2][5/5]\n']
    assert 'Epoch(train) [2][5/5]' in log.read_text()
    with pytest.raises(RuntimeError, match='out.log'):
        ew.train_embedded('broken.py', str(tmp_path / 'work2'), str(log),
                          lines.append)


@pytest.mark.parametrize('name', sorted(ew.EMBEDDED_MODELS))
def test_every_embedded_model_has_a_pretraining_config(name):
    cfg = Config.fromfile(ew.embedded_config(name))
    assert cfg.train_cfg.max_epochs >= 1
    assert cfg.default_hooks.checkpoint.interval == cfg.train_cfg.max_epochs


def test_noisy_digits_configs_start_from_the_embedded_backbone():
    cfg = Config.fromfile(
        osp.join(REPO, 'configs/balancemix/resnet18_digits_lt_noisy_bce.py'))
    assert cfg.model.backbone.init_cfg.checkpoint == \
        'embedded://resnet18_printed_digits'
