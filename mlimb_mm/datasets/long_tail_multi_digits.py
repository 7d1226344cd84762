import functools
from typing import List, Tuple

import cv2
import numpy as np
from mmpretrain.registry import DATASETS

from .base_multi_label import BaseMultiLabelDataset
from .label_utils import tristate_from_positives

DIGIT_CLASSES = ('0', '1', '2', '3', '4', '5', '6', '7', '8', '9')


def long_tail_class_sizes(num_classes: int, max_size: int,
                          imbalance_ratio: float) -> np.ndarray:
    """Exponential long-tail profile ``n_k = max_size * ratio^(-k/(K-1))``.

    Class 0 is the head (``max_size`` images), class K-1 the tail
    (``max_size / imbalance_ratio``); every class keeps at least one image.
    """
    exponents = np.arange(num_classes) / max(num_classes - 1, 1)
    sizes = max_size * float(imbalance_ratio)**(-exponents)
    return np.maximum(np.round(sizes).astype(np.int64), 1)


def assign_classes_to_images(class_sizes: np.ndarray, max_per_image: int,
                             rng: np.random.Generator) -> List[np.ndarray]:
    """Multi-label images in which class k appears in exactly
    ``class_sizes[k]`` images, each image holding 1..``max_per_image``
    distinct classes.

    Images get a random capacity in ``[1, max_per_image]`` (as many images as
    the mean capacity needs); classes are placed largest first, each into
    distinct images drawn with probability proportional to their free
    capacity. When too few images have room, new one-class images are made,
    so the class sizes are always met exactly. Images left empty are dropped.
    """
    total = int(class_sizes.sum())
    mean_capacity = (1 + max_per_image) / 2
    num_images = max(int(np.ceil(total / mean_capacity)),
                     int(class_sizes.max()))
    capacity = rng.integers(1, max_per_image + 1, size=num_images)
    members = [[] for _ in range(num_images)]
    for cls in np.argsort(-class_sizes, kind='stable'):
        open_images = np.flatnonzero(capacity > 0)
        num_in_open = min(len(open_images), int(class_sizes[cls]))
        chosen = rng.choice(
            open_images,
            size=num_in_open,
            replace=False,
            p=capacity[open_images] / capacity[open_images].sum())
        capacity[chosen] -= 1
        num_new = int(class_sizes[cls]) - num_in_open
        capacity = np.concatenate([capacity, np.zeros(num_new, np.int64)])
        members.extend([] for _ in range(num_new))
        for image in np.concatenate(
            [chosen, np.arange(len(members) - num_new, len(members))]):
            members[image].append(cls)
    return [np.sort(np.asarray(m)) for m in members if m]


@functools.lru_cache(maxsize=1)
def load_digit_images() -> Tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1797 bundled 8x8 digits as uint8 0..255 (its 17 grey
    levels scaled) and their labels; read once per process. Read-only."""
    from sklearn.datasets import load_digits
    digits = load_digits()
    images = np.round(digits.images * (255 / 16)).astype(np.uint8)
    target = digits.target
    images.flags.writeable = target.flags.writeable = False
    return images, target


def paste_digit(canvas: np.ndarray, occupied: np.ndarray, digit: np.ndarray,
                side: int, corners: np.ndarray, colour=None) -> None:
    """Resize an 8x8 ``digit`` to ``side``² and paste it, merged by maximum,
    at the candidate top-left corner (rows of ``corners``, ``(y, x)``) whose
    square covers the fewest ``occupied`` pixels (the first on ties);
    ``canvas`` and ``occupied`` are updated in place. With ``colour`` (an
    RGB triple) the grey digit scales it on an ``(H, W, 3)`` canvas."""
    digit = cv2.resize(digit, (side, side), interpolation=cv2.INTER_LINEAR)
    # occupied pixels under every candidate square at once (integral image)
    integral = np.pad(occupied, ((1, 0), (1, 0))).cumsum(0).cumsum(1)
    y, x = corners[:, 0], corners[:, 1]
    overlaps = (integral[y + side, x + side] - integral[y, x + side] -
                integral[y + side, x] + integral[y, x])
    y, x = corners[int(np.argmin(overlaps))]
    if colour is not None:
        digit = ((digit[..., None].astype(np.uint16) *
                  np.asarray(colour, np.uint16) + 127) // 255).astype(
                      np.uint8)
    region = canvas[y:y + side, x:x + side]
    np.maximum(region, digit, out=region)
    occupied[y:y + side, x:x + side] = True


def split_digit_indices(labels: np.ndarray, test_fraction: float,
                        rng: np.random.Generator):
    """Split base digit indices into disjoint train / test sets, the same
    fraction of every class going to test. Returns two sorted index arrays.
    """
    train, test = [], []
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        num_test = int(round(len(members) * test_fraction))
        test.append(members[:num_test])
        train.append(members[num_test:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def sample_balanced_images(num_images: int, num_classes: int,
                           max_per_image: int,
                           rng: np.random.Generator) -> List[np.ndarray]:
    """Images of 1..``max_per_image`` distinct classes drawn uniformly."""
    sizes = rng.integers(1, max_per_image + 1, size=num_images)
    return [
        np.sort(rng.choice(num_classes, size=size, replace=False))
        for size in sizes
    ]


@DATASETS.register_module()
class LongTailMultiDigits(BaseMultiLabelDataset):
    """Long-tailed multi-label digits, built from scikit-learn's bundled
    handwritten digits (no download): the embedded default dataset.

    The 1797 base 8×8 digits are split into train and test digits per class
    *before* composing, so no test image shares a handwritten digit with the
    training set. Each composed image is a ``canvas_size``² grey canvas
    (replicated to 3 channels, uint8) holding 1..``max_digits`` distinct
    digits, each resized to a random size in ``digit_size`` and pasted at a
    random place (the least overlapping of a few tries; overlaps are merged
    by maximum).

    - ``split='train'``: class k is present in exactly
      ``n_k = max_class_size * imbalance_ratio^(-k/9)`` images (digit 0 the
      head, digit 9 the tail), see :func:`long_tail_class_sizes`.
    - ``split='test'``: ``num_test_images`` images whose digits are drawn
      uniformly, so the test set is close to balanced.

    Everything is drawn from one ``numpy`` generator seeded by ``seed``: the
    same arguments give the same images on every machine and every rank.
    Building takes about a second.

    Args:
        split (str): ``'train'`` or ``'test'``. Defaults to ``'train'``.
        max_class_size (int): Images of the head class in the train split.
            Defaults to 1000.
        imbalance_ratio (float): Head size over tail size. Defaults to 100.
        num_test_images (int): Size of the test split. Defaults to 1000.
        max_digits (int): Most digits in one image. Defaults to 3.
        canvas_size (int): Side of the square image. Defaults to 40.
        digit_size (tuple[int, int]): Range of a digit's side in pixels.
            Defaults to (14, 20).
        test_fraction (float): Fraction of each class's base digits kept
            for the test split. Defaults to 0.5.
        seed (int): Seed of the whole construction. Defaults to 0.
        **kwargs: Other arguments of mmengine's ``BaseDataset``
            (``pipeline``, ``test_mode``, ``indices``, ...).
    """

    METAINFO = {'classes': DIGIT_CLASSES}

    def __init__(self,
                 split: str = 'train',
                 max_class_size: int = 1000,
                 imbalance_ratio: float = 100.,
                 num_test_images: int = 1000,
                 max_digits: int = 3,
                 canvas_size: int = 40,
                 digit_size: Tuple[int, int] = (14, 20),
                 test_fraction: float = 0.5,
                 seed: int = 0,
                 **kwargs):
        if split not in ('train', 'test'):
            raise ValueError(f"LongTailMultiDigits: split must be 'train' or "
                             f"'test', got {split!r}.")
        if imbalance_ratio < 1:
            raise ValueError('LongTailMultiDigits: imbalance_ratio must be '
                             f'>= 1, got {imbalance_ratio}.')
        if not 1 <= max_digits <= len(DIGIT_CLASSES):
            raise ValueError('LongTailMultiDigits: max_digits must be in '
                             f'[1, 10], got {max_digits}.')
        if not 0 < digit_size[0] <= digit_size[1] <= canvas_size:
            raise ValueError(f'LongTailMultiDigits: digit_size {digit_size} '
                             f'must fit in canvas_size {canvas_size}.')
        self.split = split
        self.max_class_size = max_class_size
        self.imbalance_ratio = imbalance_ratio
        self.num_test_images = num_test_images
        self.max_digits = max_digits
        self.canvas_size = canvas_size
        self.digit_size = tuple(digit_size)
        self.test_fraction = test_fraction
        self.seed = seed
        super().__init__(ann_file='', **kwargs)

    def _split_base_digits(self, rng):
        """Base digits of this split: a list of (n_c, 8, 8) uint8 per class."""
        images, target = load_digit_images()
        train_idx, test_idx = split_digit_indices(target, self.test_fraction,
                                                  rng)
        kept = test_idx if self.split == 'test' else train_idx
        return [
            images[kept[target[kept] == cls]]
            for cls in range(len(DIGIT_CLASSES))
        ]

    def _render(self, classes, base_digits, rng):
        """Paste one random base digit of each class onto a blank canvas."""
        canvas = np.zeros((self.canvas_size, self.canvas_size), np.uint8)
        occupied = np.zeros_like(canvas, dtype=bool)
        for cls in classes:
            digit = base_digits[cls][rng.integers(len(base_digits[cls]))]
            side = int(rng.integers(self.digit_size[0],
                                    self.digit_size[1] + 1))
            corners = rng.integers(0, self.canvas_size - side + 1, (8, 2))
            paste_digit(canvas, occupied, digit, side, corners)
        return np.repeat(canvas[..., None], 3, axis=2)

    def load_data_list(self):
        rng = np.random.default_rng(self.seed)
        base_digits = self._split_base_digits(rng)
        num_classes = len(DIGIT_CLASSES)
        # Separate streams for the two splits so one split never changes
        # when an argument of the other does.
        split_rng = np.random.default_rng([self.seed, int(
            self.split == 'test')])
        if self.split == 'train':
            sizes = long_tail_class_sizes(num_classes, self.max_class_size,
                                          self.imbalance_ratio)
            image_classes = assign_classes_to_images(sizes, self.max_digits,
                                                     split_rng)
            image_classes = [image_classes[i]
                             for i in split_rng.permutation(
                                 len(image_classes))]
        else:
            image_classes = sample_balanced_images(self.num_test_images,
                                                   num_classes,
                                                   self.max_digits, split_rng)
        return self._compose(image_classes, base_digits, split_rng)

    def _compose(self, image_classes, base_digits, rng) -> List[dict]:
        """The data list: one rendered canvas per entry of
        ``image_classes`` (the classes of each image)."""
        data_list = []
        for classes in image_classes:
            img = self._render(classes, base_digits, rng)
            data_list.append(
                dict(
                    img=img,
                    img_shape=img.shape[:2],
                    ori_shape=img.shape[:2],
                    gt_label=classes.tolist(),
                    gt_tristate=tristate_from_positives(
                        classes, len(DIGIT_CLASSES))))
        return data_list

    def extra_repr(self) -> List[str]:
        return [
            f'Split: \t{self.split}',
            f'Imbalance ratio: \t{self.imbalance_ratio}',
            f'Canvas size: \t{self.canvas_size}',
            f'Seed: \t{self.seed}',
        ]
