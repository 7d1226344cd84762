import os
import os.path as osp
import subprocess

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BASE_CONFIG = osp.join(REPO, 'configs/baseline/resnet18_digits_lt_bce.py')


def write_small_config(directory, max_epochs=2, deterministic=False,
                       num_workers=0, extra=''):
    """A config inheriting the digits BCE baseline, shrunk to 64 training
    and 64 test images (2 iterations an epoch at batch 32)."""
    pipeline = ", pipeline=[dict(type='PackMultiLabelInputs')]" \
        if deterministic else ''
    workers = f'num_workers={num_workers}, persistent_workers=' \
        f'{bool(num_workers)}'
    text = f'''
_base_ = [{BASE_CONFIG!r}]
train_dataloader = dict(
    batch_size=32, {workers},
    dataset=dict(indices=64{pipeline}))
val_dataloader = dict(batch_size=32, {workers}, dataset=dict(indices=64))
test_dataloader = val_dataloader
train_cfg = dict(max_epochs={max_epochs}, val_interval=1)
param_scheduler = [dict(type='CosineAnnealingLR', by_epoch=True, begin=0,
                        end={max_epochs})]
default_hooks = dict(logger=dict(interval=1),
                     checkpoint=dict(max_keep_ckpts=5, save_best=None))
''' + extra
    path = osp.join(directory, 'small_digits.py')
    with open(path, 'w') as f:
        f.write(text)
    return path


def run_tool(args, cwd, timeout=600, env_extra=None):
    env = dict(os.environ)
    env['PYTHONPATH'] = REPO + os.pathsep + env.get('PYTHONPATH', '')
    env.setdefault('OMP_NUM_THREADS', '1')
    env.update(env_extra or {})
    proc = subprocess.run(
        args, cwd=cwd, env=env, capture_output=True, text=True,
        timeout=timeout)
    if proc.returncode != 0:
        raise AssertionError(f'{args} failed ({proc.returncode}):\n'
                             f'{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}')
    return proc.stdout + proc.stderr
