"""tools/benchmark_gpu.py runs every method at a tiny size on the CPU (a
GPU when there is one) and prints its table."""

import pytest
import torch
from script_loader import load_script


def load_tool():
    return load_script('tools/benchmark_gpu.py')


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_benchmark_reports_every_method(capsys, one_thread):
    tool = load_tool()
    rows = tool.main(['--img-size', '32', '--batch-size', '4', '--iters',
                      '2', '--warmup', '1', '--threads', '1', '--amp',
                      '--methods', *[m for m in tool.METHODS if m != 'bce']])
    assert list(rows) == list(tool.METHODS)  # BCE first, always
    assert rows['bce']['time_ratio'] == 1.0
    wrapper = 'AmpOptimWrapper' if torch.cuda.is_available() else \
        'AutocastOptimWrapper'
    for name, row in rows.items():
        assert row['img_size'] == 32 and row['batch'] == 4, name
        assert row['step_ms'] > 0 and row['images_per_s'] > 0, name
        assert row['memory_mb'] > 0, name
        assert row['optim_wrapper'] == wrapper, name
    # only BalanceMix has a pass over the training set at the epoch end
    assert rows['balancemix']['epoch_end_s'] > rows['bce']['epoch_end_s']
    out = capsys.readouterr().out
    assert '| BCE | 32 | 4 |' in out and '| COMIC separate | 32 | 4 |' in out
    assert out.count('\n| ') == 2 + len(tool.METHODS)
    ratio = rows['pseudo_labels']['step_ms'] / rows['an']['step_ms']
    assert rows['pseudo_labels']['an_ratio'] == pytest.approx(ratio)
    assert f'pseudo labels / AN-BCE step: {ratio:.2f}' in out


def test_config_sizes_and_arguments():
    tool = load_tool()
    args = tool.argparse.Namespace(img_size=None, batch_size=None, iters=3,
                                   workers=0, amp=False)
    device = torch.device('cpu')
    expected = dict(bce=(224, 32), plm=(224, 25), balancemix=(448, 128),
                    an=(448, 16), pseudo_labels=(448, 16),
                    comic_separate=(224, 32))
    for method, (size, batch) in expected.items():
        cfg, got_size, got_batch = tool.method_cfg(method, args, '/tmp',
                                                   device)
        assert (got_size, got_batch) == (size, batch), method
        assert cfg.train_dataloader.dataset.num_samples == 4 * batch
        assert 'init_cfg' not in cfg.model.backbone
    cfg, _, _ = tool.method_cfg('balancemix', args, '/tmp', device)
    assert cfg.train_dataloader.sampler.batch_size_per_half == 64
    refine = [h for h in cfg.custom_hooks
              if h['type'] == 'LabelRefinementHook'][0]
    assert refine['warmup_epochs'] == 0 and refine['view_transforms'] is None
    with pytest.raises(SystemExit):
        tool.main(['--iters', '2', '--warmup', '2'])
