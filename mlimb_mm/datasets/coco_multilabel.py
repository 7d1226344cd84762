from typing import List, Optional, Tuple

import numpy as np
from mmengine.fileio import exists

from mmpretrain.registry import DATASETS
from .base_multi_label import BaseMultiLabelDataset
from .label_utils import POSITIVE, UNKNOWN, load_annotation_file
from .tristate_multilabel import (check_unique_classes, classes_given,
                                  join_paths, positive_lists, select_classes)

COCO_CATEGORIES = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train',
    'truck', 'boat', 'traffic light', 'fire hydrant', 'stop sign',
    'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow',
    'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella',
    'handbag', 'tie', 'suitcase', 'frisbee', 'skis', 'snowboard',
    'sports ball', 'kite', 'baseball bat', 'baseball glove', 'skateboard',
    'surfboard', 'tennis racket', 'bottle', 'wine glass', 'cup', 'fork',
    'knife', 'spoon', 'bowl', 'banana', 'apple', 'sandwich', 'orange',
    'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair',
    'couch', 'potted plant', 'bed', 'dining table', 'toilet', 'tv',
    'laptop', 'mouse', 'remote', 'keyboard', 'cell phone', 'microwave',
    'oven', 'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase',
    'scissors', 'teddy bear', 'hair drier', 'toothbrush')


@DATASETS.register_module()
class CocoMultiLabelDataset(BaseMultiLabelDataset):
    """COCO as a multi-label classification dataset: one sample per image.

    Reads a COCO detection file (``instances_train2017.json``, ...) with
    plain JSON loading (no ``pycocotools``). The labels of an image are the
    categories of its annotations: 1 for every category with at least one
    annotation in the image, crowd annotations (``iscrowd=1``) included, and
    0 for every other category (COCO is fully labelled).

    The annotation format is shown as follows (the fields used):

    .. code-block:: none

        {
            "images": [
                {"id": 139, "file_name": "000000000139.jpg", ...}, ...
            ],
            "annotations": [
                {"id": 1768, "image_id": 139, "category_id": 1,
                 "iscrowd": 0, ...}, ...
            ],
            "categories": [
                {"id": 1, "name": "person", ...}, ...
            ]
        }

    Category ids (sparse: 1..90 in COCO) map to class indices 0..K-1 in the
    order of ``categories`` sorted by id; the class names are the names of
    the file's categories (:attr:`METAINFO`, the 80 COCO classes, only names
    the classes before the file is loaded, and is used when the file's
    categories have no names). A file without an ``annotations`` key (an
    ``image_info_*.json`` of test images) gives unknown (-1) labels.

    Class names given by ``metainfo``/``classes`` must all be names of the
    file's categories: the dataset then keeps those classes only, in the
    given order, and ignores the annotations of the other categories.

    Args:
        ann_file (str): Path of the COCO json, joined with ``data_root``
            when relative.
        keep_empty (bool): Keep the images with no annotation (of the kept
            classes) as all-negative samples. If False they are dropped.
            Defaults to True.
        check_images (bool): Check at load time that every image file exists
            and raise a ``FileNotFoundError`` naming a missing one.
            Defaults to False.
        metainfo (dict, optional): Meta information; ``classes`` selects a
            subset of the categories. Defaults to None.
        data_root (str): The root directory for ``data_prefix`` and
            ``ann_file``. Defaults to ''.
        data_prefix (str | dict): Prefix of the images: ``img_path`` is
            ``join(data_prefix['img_path'], file_name)``. Defaults to ''.
        **kwargs: Other arguments of :class:`mmpretrain.datasets.BaseDataset`
            (``pipeline``, ``classes``, ``test_mode``, ...).

    Examples:
        >>> from mmpretrain.registry import DATASETS
        >>> import mlimb_mm  # noqa: register the datasets
        >>> dataset = DATASETS.build(dict(
        ...     type='CocoMultiLabelDataset', data_root='data/coco',
        ...     ann_file='annotations/instances_val2017.json',
        ...     data_prefix=dict(img_path='val2017')))
        >>> len(dataset), len(dataset.CLASSES)
        (5000, 80)
    """

    METAINFO = {'classes': COCO_CATEGORIES}

    def __init__(self,
                 ann_file: str,
                 keep_empty: bool = True,
                 check_images: bool = False,
                 metainfo: Optional[dict] = None,
                 classes=None,
                 **kwargs):
        self.keep_empty = keep_empty
        self.check_images = check_images
        self._classes_given = classes_given(metainfo, classes)
        super().__init__(
            ann_file=ann_file, metainfo=metainfo, classes=classes, **kwargs)

    def load_data_list(self) -> List[dict]:
        """Load the COCO json into one data info per image."""
        coco = self._load_json()
        cat_ids, file_classes = self._parse_categories(coco)
        if self._classes_given:
            classes = list(self.CLASSES)
            cat_to_label = np.full(len(cat_ids), -1, dtype=np.int64)
            cat_to_label[select_classes(file_classes, classes,
                                        self.ann_file)] = np.arange(
                                            len(classes))
        else:
            classes = file_classes
            check_unique_classes(classes, self.ann_file)
            cat_to_label = np.arange(len(cat_ids))
        self._metainfo['classes'] = tuple(classes)

        images = coco['images']
        img_ids = self._image_ids(images)
        if 'annotations' in coco:
            labels = self._build_labels(coco['annotations'], img_ids,
                                        cat_ids, cat_to_label, len(classes))
            keep = np.arange(len(images))
            if not self.keep_empty:
                keep = np.flatnonzero((labels == POSITIVE).any(1))
        else:
            labels = np.full((len(images), len(classes)), UNKNOWN, np.int8)
            keep = np.arange(len(images))

        if not len(keep):
            raise ValueError(
                f'{self.ann_file} has no samples' +
                ('' if self.keep_empty else
                 ' with a positive label (keep_empty=False)') + '.')
        data_list = self._make_data_list(images, img_ids, labels, keep)
        if self.check_images:
            self._check_images(data_list)
        return data_list

    def _load_json(self) -> dict:
        if not self.ann_file or not exists(self.ann_file):
            raise FileNotFoundError(
                f'COCO annotation file {self.ann_file!r} not found.')
        coco = load_annotation_file(self.ann_file)
        if not isinstance(coco, dict) or 'images' not in coco \
                or 'categories' not in coco:
            raise ValueError(f'{self.ann_file} is not a COCO annotation file: '
                             'no `images` or `categories`.')
        return coco

    def _parse_categories(self, coco: dict) -> Tuple[np.ndarray, List[str]]:
        """Sorted category ids and their class names."""
        cats = sorted(coco['categories'], key=lambda cat: cat['id'])
        cat_ids = np.asarray([cat['id'] for cat in cats], dtype=np.int64)
        if len(np.unique(cat_ids)) != len(cat_ids):
            raise ValueError(f'{self.ann_file}: duplicated category ids in '
                             '`categories`.')
        if all('name' in cat for cat in cats):
            names = [cat['name'] for cat in cats]
        elif len(cats) == len(COCO_CATEGORIES):
            names = list(COCO_CATEGORIES)
        else:
            names = [cat.get('name', str(cat['id'])) for cat in cats]
        return cat_ids, names

    def _image_ids(self, images: List[dict]) -> np.ndarray:
        img_ids = np.fromiter((img['id'] for img in images),
                              dtype=np.int64,
                              count=len(images))
        unique, counts = np.unique(img_ids, return_counts=True)
        if (counts > 1).any():
            raise ValueError(f'{self.ann_file}: image id '
                             f'{unique[counts > 1][0]} appears more than '
                             'once in `images`.')
        return img_ids

    @staticmethod
    def _lookup(sorted_keys: np.ndarray, queries: np.ndarray):
        """Positions of ``queries`` in ``sorted_keys`` and a found mask."""
        pos = np.searchsorted(sorted_keys, queries)
        pos_clipped = np.minimum(pos, max(len(sorted_keys) - 1, 0))
        found = (pos < len(sorted_keys))
        if len(sorted_keys):
            found &= sorted_keys[pos_clipped] == queries
        return pos_clipped, found

    def _build_labels(self, anns: List[dict], img_ids: np.ndarray,
                      cat_ids: np.ndarray, cat_to_label: np.ndarray,
                      num_classes: int) -> np.ndarray:
        """The ``(N, K)`` int8 label matrix, built without per-class loops."""
        try:
            ann_imgs = np.fromiter((ann['image_id'] for ann in anns),
                                   dtype=np.int64,
                                   count=len(anns))
            ann_cats = np.fromiter((ann['category_id'] for ann in anns),
                                   dtype=np.int64,
                                   count=len(anns))
        except KeyError as e:
            raise ValueError(f'{self.ann_file}: an annotation has no '
                             f'{e.args[0]!r}.') from None

        cat_pos, found = self._lookup(cat_ids, ann_cats)
        if not found.all():
            i = int(np.flatnonzero(~found)[0])
            raise ValueError(
                f'unknown category {ann_cats[i]} in annotation id '
                f'{anns[i].get("id", f"#{i}")} of image {ann_imgs[i]} in '
                f'{self.ann_file}.')

        order = np.argsort(img_ids, kind='stable')
        img_pos, found = self._lookup(img_ids[order], ann_imgs)
        if not found.all():
            i = int(np.flatnonzero(~found)[0])
            raise ValueError(
                f'annotation id {anns[i].get("id", f"#{i}")} of '
                f'{self.ann_file} refers to image {ann_imgs[i]}, which has no '
                'entry in `images`.')

        labels = np.zeros((len(img_ids), num_classes), dtype=np.int8)
        label = cat_to_label[cat_pos]
        kept = label >= 0
        labels[order[img_pos[kept]], label[kept]] = POSITIVE
        return labels

    def _make_data_list(self, images: List[dict], img_ids: np.ndarray,
                        labels: np.ndarray, keep: np.ndarray) -> List[dict]:
        keep = keep.tolist()
        img_paths = join_paths(self.img_prefix,
                               [images[i]['file_name'] for i in keep])
        labels = labels[keep] if len(keep) < len(labels) else labels
        gt_labels = positive_lists(labels)
        img_ids = img_ids[keep].tolist()
        return [
            dict(
                img_path=img_paths[j],
                img_id=img_ids[j],
                gt_tristate=labels[j],
                gt_label=gt_labels[j]) for j in range(len(keep))
        ]

    def _check_images(self, data_list: List[dict]) -> None:
        missing = [
            info for info in data_list if not exists(info['img_path'])
        ]
        if missing:
            more = (f' ({len(missing) - 1} more missing)'
                    if len(missing) > 1 else '')
            raise FileNotFoundError(
                f'image {missing[0]["img_path"]!r} (image id '
                f'{missing[0]["img_id"]}) of {self.ann_file} does not '
                f'exist{more}.')

    def extra_repr(self) -> List[str]:
        """The extra repr information of the dataset."""
        return super().extra_repr() + [f'Keep empty images: \t'
                                       f'{self.keep_empty}']
