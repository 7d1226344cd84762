"""tools/benchmark_comic.py runs end to end at a tiny size and reports
every backbone option as ratios to BCE."""
import importlib.util
import os.path as osp

from tool_runner import REPO


def load_tool():
    spec = importlib.util.spec_from_file_location(
        'benchmark_comic', osp.join(REPO, 'tools/benchmark_comic.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_reports_every_option(capsys):
    tool = load_tool()
    results = tool.main(['--arch', 'digits', '--batch', '2', '--size', '16',
                         '--steps', '1', '--rounds', '1'])
    assert list(results) == ['BCE', 'COMIC separate', 'COMIC shared',
                             'COMIC frozen']
    assert results['BCE']['time_ratio'] == results['BCE']['memory_ratio'] \
        == 1.0
    # three trained backbones hold about three times BCE's tensors; the
    # frozen one trains no backbone
    assert 2.5 < results['COMIC separate']['memory_ratio'] < 4
    assert results['COMIC frozen']['memory_ratio'] < 1
    out = capsys.readouterr().out
    assert '| COMIC shared | 2 |' in out and '| COMIC frozen | 6 |' in out
