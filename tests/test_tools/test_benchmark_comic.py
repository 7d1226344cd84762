"""tools/benchmark_comic.py runs end to end at a tiny size and reports
every backbone option as ratios to BCE."""

from script_loader import load_script


def load_tool():
    return load_script('tools/benchmark_comic.py')


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
