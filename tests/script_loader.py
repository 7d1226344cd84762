"""Load a script of the repository (``tools/...``) as a module, for tests
that call its functions directly."""
import importlib.util
import os.path as osp

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def load_script(relative_path: str, name: str = None):
    """The module of ``REPO/relative_path``, executed once per call (not
    registered in ``sys.modules``)."""
    path = osp.join(REPO, relative_path)
    name = name or osp.splitext(osp.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
