"""A stand-in for a tri-state multi-label dataset, shared by the tests of
the label wrappers, samplers and hooks: only what they read of a dataset."""
import numpy as np


class FakeTriStateDataset:
    """Tri-state labels (1 / 0 / -1, ``(N, K)``) with the dataset API the
    wrappers, samplers and hooks use: ``len``, ``get_tristate_labels``,
    ``get_data_info``, ``metainfo``, ``full_init`` (calls counted in
    ``init_calls``) and an identity ``pipeline``.

    Args:
        labels: ``(N, K)`` tri-state labels, kept as ``labels`` (int8).
        fields (tuple[str]): The id fields of the data infos: ``'img_id'``
            (``1000 + index``) and / or ``'img_path'``
            (``images/{index:05d}.jpg``). Defaults to both.
        classes (sequence[str], optional): Class names; ``c0, c1, ...`` by
            default.
    """

    def __init__(self, labels, fields=('img_id', 'img_path'), classes=None):
        self.labels = np.ascontiguousarray(labels, dtype=np.int8)
        self.fields = fields
        self.classes = tuple(classes or (
            f'c{k}' for k in range(self.labels.shape[1])))
        self.init_calls = 0

    @property
    def metainfo(self):
        return dict(classes=self.classes)

    def full_init(self):
        self.init_calls += 1

    def pipeline(self, info):
        return info

    def __len__(self):
        return len(self.labels)

    def get_tristate_labels(self):
        return self.labels

    def get_data_info(self, idx):
        info = dict(gt_tristate=self.labels[idx].copy())
        if 'img_id' in self.fields:
            info['img_id'] = 1000 + idx
        if 'img_path' in self.fields:
            info['img_path'] = f'images/{idx:05d}.jpg'
        return info
