"""``embedded://NAME`` checkpoints: pre-trained weights of the embedded
benchmarks, built on first use and cached, the way OpenMMLab configs get
ImageNet weights with ``torchvision://resnet50``.

A config asks for them like any pre-trained checkpoint::

    model = dict(backbone=dict(init_cfg=dict(
        type='Pretrained', checkpoint='embedded://resnet18_printed_digits',
        prefix='backbone.')))

The first time MMEngine loads such a checkpoint, the pre-training config
registered for ``NAME`` (:data:`EMBEDDED_MODELS`) is trained once with
``tools/train.py`` in a subprocess (its output shown and written to a log),
the weights of its last checkpoint are kept in the cache and every later
load reads them from there. The cache is ``$MLIMB_MM_HOME`` (default
``~/.cache/mlimb_mm``)::

    $MLIMB_MM_HOME/checkpoints/NAME-DIGEST.pth      the weights (state_dict)
    $MLIMB_MM_HOME/embedded/NAME-DIGEST/             the pre-training run
    $MLIMB_MM_HOME/embedded/NAME-DIGEST.log          its output

``DIGEST`` hashes the resolved pre-training config, so changing it builds
new weights instead of reusing stale ones. A file lock makes several
processes (the ranks of a distributed run, parallel benchmark runs) build a
checkpoint once: the first builds, the others wait and then load it. The
pre-training runs with :data:`BUILD_THREADS` torch threads whoever asks:
the thread count changes the order of the float sums, so weights built
with another count differ, and so do the runs that start from them.
"""
import contextlib
import hashlib
import json
import os
import os.path as osp
import subprocess
import sys
import time
from typing import Callable, Optional

import torch
from mmengine.logging import print_log
from mmengine.runner import CheckpointLoader
from mmengine.runner.checkpoint import load_from_local

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None

SCHEME = 'embedded://'
#: the repository (configs/ and tools/ live beside the package)
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
#: NAME -> the pre-training config (relative to the repository, or absolute)
#: and what a user should expect while it is built
EMBEDDED_MODELS = {
    'resnet18_printed_digits':
    dict(
        config='configs/pretrain/resnet18_printed_digits.py',
        about='the digits ResNet-18 on printed digits, about 3 minutes on 2 '
        'CPU cores'),
    'resnet18_printed_cocolike':
    dict(
        config='configs/pretrain/resnet18_printed_cocolike.py',
        about='the digits ResNet-18 on printed coloured digits, about 5 '
        'minutes on 2 CPU cores'),
}
#: torch threads of every pre-training (the same weights on every machine
#: of a kind, from ``tools/train.py`` as from the benchmark tool)
BUILD_THREADS = 1
#: variables of a distributed launcher that must not reach the builder
_LAUNCHER_VARIABLES = ('RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'LOCAL_WORLD_SIZE',
                       'MASTER_ADDR', 'MASTER_PORT', 'GROUP_RANK',
                       'ROLE_RANK', 'ROLE_WORLD_SIZE', 'TORCHELASTIC_RUN_ID')


def mlimb_mm_home() -> str:
    """The cache folder: ``$MLIMB_MM_HOME``, default ``~/.cache/mlimb_mm``."""
    return osp.abspath(
        osp.expanduser(
            os.environ.get('MLIMB_MM_HOME') or
            osp.join('~', '.cache', 'mlimb_mm')))


def register_embedded(name: str, config: str, about: str = '') -> None:
    """Make ``embedded://NAME`` build its weights by training ``config``."""
    if not name or '/' in name:
        raise ValueError(f'embedded weights: a name must be non-empty and '
                         f'have no "/", got {name!r}.')
    EMBEDDED_MODELS[name] = dict(config=config, about=about)


def _entry(name: str) -> dict:
    if name not in EMBEDDED_MODELS:
        raise KeyError(
            f'{SCHEME}{name}: unknown embedded weights {name!r}; known: '
            f'{sorted(EMBEDDED_MODELS)} (mlimb_mm.utils.embedded_weights.'
            'register_embedded adds one).')
    return EMBEDDED_MODELS[name]


def embedded_config(name: str) -> str:
    """The absolute path of the pre-training config of ``name``."""
    config = _entry(name)['config']
    path = config if osp.isabs(config) else osp.join(REPO, config)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'{SCHEME}{name} is built by training {config}, which is not '
            f'in {REPO} (mlimb_mm installed without its configs?): install '
            'mlimb_mm from its repository (pip install -e .).')
    return path


def config_digest(config: str) -> str:
    """8 hex digits of the SHA-256 of the resolved config (comments and
    formatting do not count)."""
    from mmengine.config import Config
    resolved = Config.fromfile(config).to_dict()
    text = json.dumps(resolved, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def embedded_paths(name: str) -> dict:
    """The checkpoint, work dir and log of ``name`` in the cache."""
    stem = f'{name}-{config_digest(embedded_config(name))}'
    home = mlimb_mm_home()
    return dict(
        checkpoint=osp.join(home, 'checkpoints', stem + '.pth'),
        work_dir=osp.join(home, 'embedded', stem),
        log=osp.join(home, 'embedded', stem + '.log'),
        lock=osp.join(home, 'embedded', stem + '.lock'))


@contextlib.contextmanager
def file_lock(path: str, on_wait: Optional[Callable[[], None]] = None):
    """An exclusive lock on ``path`` across processes (``flock``);
    ``on_wait`` is called once if another process holds it."""
    with open(path, 'a') as handle:
        if fcntl is None:  # pragma: no cover - not POSIX
            print_log(f'embedded weights: no file locking on this platform; '
                      f'start one process first so that {path} is built '
                      'once.', logger='current')
            yield
            return
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _print_line(name: str) -> Callable[[str], None]:
    def show(line: str) -> None:
        print(f'[{SCHEME}{name}] {line}', end='' if line.endswith('\n') else
              '\n', flush=True)

    return show


def train_embedded(config: str, work_dir: str, log_file: str,
                   on_line: Callable[[str], None],
                   threads: Optional[int] = None) -> str:
    """Train ``config`` with ``tools/train.py`` in a subprocess, every line
    of its output passed to ``on_line`` and written to ``log_file``, and
    return the path of its last checkpoint.

    Raises:
        RuntimeError: when the training fails (the log's path and its last
            lines in the message).
    """
    command = [
        sys.executable,
        osp.join(REPO, 'tools', 'train.py'), config, '--work-dir', work_dir
    ]
    env = {k: v for k, v in os.environ.items() if k not in _LAUNCHER_VARIABLES}
    if threads:
        env['OMP_NUM_THREADS'] = env['MKL_NUM_THREADS'] = str(threads)
    tail = []
    with open(log_file, 'w') as log, subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            env=env, text=True, bufsize=1) as process:
        log.write(' '.join(command) + '\n')
        for line in process.stdout:
            log.write(line)
            log.flush()
            on_line(line)
            tail = (tail + [line])[-20:]
        code = process.wait()
    if code != 0:
        raise RuntimeError(
            f'embedded weights: training {config} failed (exit code {code}); '
            f'log: {log_file}. Last lines:\n' + ''.join(tail))
    return last_checkpoint(work_dir)


def last_checkpoint(work_dir: str) -> str:
    """The checkpoint that MMEngine's ``last_checkpoint`` file names."""
    marker = osp.join(work_dir, 'last_checkpoint')
    if not osp.isfile(marker):
        raise FileNotFoundError(f'embedded weights: the training in '
                                f'{work_dir} wrote no checkpoint.')
    with open(marker) as f:
        path = f.read().strip()
    if not osp.isabs(path):
        path = osp.join(work_dir, path)
    if not osp.isfile(path):
        raise FileNotFoundError(f'embedded weights: {marker} names {path}, '
                                'which does not exist.')
    return path


def export_weights(checkpoint: str, out: str, meta: dict) -> None:
    """Keep only the ``state_dict`` of ``checkpoint`` (and ``meta``) in
    ``out``, written atomically."""
    from .checkpoint import register_checkpoint_safe_globals
    register_checkpoint_safe_globals()
    state = torch.load(checkpoint, map_location='cpu')
    state = state.get('state_dict', state)
    os.makedirs(osp.dirname(out), exist_ok=True)
    partial = f'{out}.{os.getpid()}.partial'
    torch.save(dict(state_dict=state, meta=meta), partial)
    os.replace(partial, out)


def ensure_embedded(name: str,
                    on_line: Optional[Callable[[str], None]] = None,
                    threads: int = BUILD_THREADS) -> str:
    """The cached checkpoint of ``embedded://NAME``, built first when it is
    missing (once across processes).

    Args:
        name (str): A key of :data:`EMBEDDED_MODELS`.
        on_line (callable, optional): Receives every output line of the
            pre-training; default: print it, prefixed with the name.
        threads (int): torch threads of the pre-training. Defaults to
            :data:`BUILD_THREADS`, which makes the cached weights.

    Returns:
        str: The path of the weights file.
    """
    entry = _entry(name)
    paths = embedded_paths(name)
    if osp.isfile(paths['checkpoint']):
        return paths['checkpoint']
    os.makedirs(osp.dirname(paths['lock']), exist_ok=True)

    def waiting():
        print_log(f'{SCHEME}{name}: another process is building it; waiting '
                  f'for {paths["checkpoint"]}', logger='current')

    with file_lock(paths['lock'], on_wait=waiting):
        if osp.isfile(paths['checkpoint']):  # built while we waited
            return paths['checkpoint']
        config = embedded_config(name)
        print_log(
            f'{SCHEME}{name} is not in the cache: training '
            f'{osp.relpath(config, REPO)} once ({entry["about"]}) into '
            f'{paths["work_dir"]}; output in {paths["log"]}',
            logger='current')
        start = time.time()
        last = train_embedded(config, paths['work_dir'], paths['log'],
                              on_line or _print_line(name), threads)
        export_weights(
            last, paths['checkpoint'],
            dict(embedded=name, config=osp.relpath(config, REPO),
                 source=last, minutes=round((time.time() - start) / 60, 2)))
        print_log(f'{SCHEME}{name}: built in '
                  f'{(time.time() - start) / 60:.1f} min, cached as '
                  f'{paths["checkpoint"]}', logger='current')
    return paths['checkpoint']


@CheckpointLoader.register_scheme(prefixes=SCHEME)
def load_from_embedded(filename: str, map_location=None):
    """MMEngine loader of ``embedded://NAME``: the cached weights, built
    first when needed (:func:`ensure_embedded`)."""
    return load_from_local(ensure_embedded(filename[len(SCHEME):]),
                           map_location)
