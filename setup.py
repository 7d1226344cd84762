"""Install mlimb_mm, an mmpretrain extension for messy multi-label data.

``mmcv`` comes in two flavours that install into the same ``mmcv/`` folder:
the full package (compiled ops, CUDA wheels) and ``mmcv-lite`` (pure Python,
all that mlimb_mm and mmpretrain's ResNets need). Installing one over the
other breaks it, so neither is a hard requirement: pick one with an extra,

    pip install -e ".[lite]"    # mmcv-lite, works everywhere
    pip install -e ".[full]"    # full mmcv, needs a wheel for your torch/CUDA

or install ``mmcv`` yourself first and run ``pip install -e .``.
"""
from setuptools import find_packages, setup


def read_version():
    namespace = {}
    with open('mlimb_mm/version.py') as f:
        exec(f.read(), namespace)
    return namespace['__version__']


install_requires = [
    # torch >= 2.6 loads checkpoints with ``weights_only=True``; mlimb_mm
    # allow-lists what its checkpoints hold (mlimb_mm/utils/checkpoint.py).
    'torch>=2.1,<2.15',
    'torchvision>=0.16,<0.30',
    'mmengine>=0.10.4,<0.11',
    'mmpretrain>=1.2.0,<1.3',
    'numpy>=1.23',
    'scikit-learn>=1.2',
    'matplotlib>=3.6',
]

setup(
    name='mlimb_mm',
    version=read_version(),
    description=('Multi-label classification on long-tailed, noisy and '
                 'partially labelled data for mmpretrain / MMEngine'),
    long_description=open('README.md').read(),
    long_description_content_type='text/markdown',
    packages=find_packages(exclude=('tests', 'tests.*', 'configs', 'tools')),
    python_requires='>=3.9',
    install_requires=install_requires,
    extras_require={
        'lite': ['mmcv-lite>=2.0.0,<2.4.0'],
        'full': ['mmcv>=2.0.0,<2.4.0'],
        'tests': ['pytest>=7'],
    },
    license='Apache License 2.0',
    zip_safe=False,
)
