"""COCO-shaped multi-label data built from scikit-learn's bundled digits:
80 classes (10 digit shapes x 8 colours), about 2.9 positives per image, a
natural long tail from a head class in about half of the images down to a
fraction of a percent, and classes that co-occur through latent scenes.

See :class:`CocoLikeDigits`; the label model is :class:`SceneLabelModel`.
"""
from typing import List, Optional, Tuple

import numpy as np
from mmpretrain.registry import DATASETS

from .base_multi_label import BaseMultiLabelDataset
from .label_utils import tristate_from_positives
from .long_tail_multi_digits import (DIGIT_CLASSES, load_digit_images,
                                     paste_digit, sample_balanced_images,
                                     split_digit_indices)
from .printed_multi_digits import render_printed_digit

#: Eight well separated colours (RGB): the corners of the RGB cube but
#: black, and orange between red and yellow.
COLOURS = (('red', (255, 0, 0)), ('orange', (255, 128, 0)),
           ('yellow', (255, 255, 0)), ('green', (0, 255, 0)),
           ('cyan', (0, 255, 255)), ('blue', (0, 0, 255)),
           ('magenta', (255, 0, 255)), ('white', (255, 255, 255)))
COLOUR_NAMES = tuple(name for name, _ in COLOURS)
COLOUR_VALUES = np.array([rgb for _, rgb in COLOURS], np.uint8)
#: Class ``k`` is digit ``k // 8`` in colour ``k % 8``: 'red 0', 'orange 0',
#: ..., 'white 9'.
COCO_LIKE_CLASSES = tuple(f'{colour} {digit}' for digit in DIGIT_CLASSES
                          for colour in COLOUR_NAMES)


def coco_like_frequencies(num_classes: int,
                          head_fraction: float = 0.54,
                          second_fraction: float = 0.11,
                          tail_fraction: float = 0.002,
                          mean_positives: float = 2.9) -> np.ndarray:
    """Target fraction of images holding each class, head first.

    The head class is in ``head_fraction`` of the images (COCO 2017's
    'person': about 54%). Ranks ``r = 1 .. K-1`` interpolate the logarithm
    from ``second_fraction`` down to ``tail_fraction``::

        log f_r = log f_1 + (log f_tail - log f_1) * t_r ** gamma,
        t_r = (r - 1) / (K - 2),

    a curve that is flat in the middle and falls steeply at the end, as
    COCO's (gamma > 1). ``gamma`` is solved (bisection on its logarithm) so
    that the fractions add up to ``mean_positives``, the mean number of
    positives per image.

    Raises:
        ValueError: naming the option at fault when the fractions are out of
            order or no ``gamma`` reaches ``mean_positives``.
    """
    if num_classes < 3:
        raise ValueError(f'coco_like_frequencies: num_classes must be >= 3, '
                         f'got {num_classes}.')
    if not 0 < tail_fraction < second_fraction < head_fraction < 1:
        raise ValueError(
            'CocoLikeDigits: the class fractions must satisfy 0 < '
            'tail_fraction < second_fraction < head_fraction < 1, got '
            f'tail_fraction={tail_fraction}, second_fraction='
            f'{second_fraction}, head_fraction={head_fraction}.')
    t = np.arange(num_classes - 1) / (num_classes - 2)
    log_second, log_tail = np.log(second_fraction), np.log(tail_fraction)

    def curve(gamma):
        rest = np.exp(log_second + (log_tail - log_second) * t**gamma)
        return np.concatenate([[head_fraction], rest])

    # the sum grows with gamma, from head + second + (K-2) tail (gamma -> 0)
    # to head + (K-2) second + tail (gamma -> inf)
    lowest = head_fraction + second_fraction + (num_classes - 2) * \
        tail_fraction
    highest = head_fraction + (num_classes - 2) * second_fraction + \
        tail_fraction
    if not lowest < mean_positives < highest:
        raise ValueError(
            f'CocoLikeDigits: mean_positives={mean_positives} cannot be '
            f'reached with these class fractions: it must be in '
            f'({lowest:.3f}, {highest:.3f}) for head_fraction='
            f'{head_fraction}, second_fraction={second_fraction}, '
            f'tail_fraction={tail_fraction}.')
    lo, hi = np.log(1e-4), np.log(1e4)
    for _ in range(100):
        mid = (lo + hi) / 2
        if curve(np.exp(mid)).sum() < mean_positives:
            lo = mid
        else:
            hi = mid
    return curve(np.exp((lo + hi) / 2))


def _count_prefix(presence: np.ndarray, cap: int) -> np.ndarray:
    """``out[:, k, n]``: probability that ``n`` of the classes ``< k`` are
    present (independent Bernoullis ``presence[:, j]``), for ``n < cap``;
    ``out[:, k, cap]`` collects ``n >= cap``. Shape ``(S, K + 1, cap + 1)``.
    """
    num_scenes, num_classes = presence.shape
    out = np.zeros((num_scenes, num_classes + 1, cap + 1))
    out[:, 0, 0] = 1.
    for k in range(num_classes):
        p = presence[:, k, None]
        prev = out[:, k]
        nxt = prev * (1. - p)
        nxt[:, 1:] += prev[:, :-1] * p
        nxt[:, cap] += prev[:, cap] * p[:, 0]
        out[:, k + 1] = nxt
    return out


def count_without_each_class(presence: np.ndarray, cap: int) -> np.ndarray:
    """``out[s, k, n]``: probability that ``n`` classes other than ``k`` are
    present in scene ``s`` (``n < cap``; ``out[..., cap]`` is ``n >= cap``),
    from a prefix and a suffix pass of the Poisson-binomial recursion."""
    prefix = _count_prefix(presence, cap)[:, :-1]  # classes < k
    suffix = _count_prefix(presence[:, ::-1], cap)[:, -2::-1]  # classes > k
    out = np.zeros(prefix.shape)
    for a in range(cap + 1):
        for b in range(cap + 1):
            out[..., min(a + b, cap)] += prefix[..., a] * suffix[..., b]
    return out


class SceneLabelModel:
    """A seeded generative model of label sets with COCO's statistics.

    An image first draws a latent scene ``s`` (prior ``prior[s]``), then
    every class ``k`` independently with probability ``presence[s, k]``;
    images with no class or with more than ``max_positives`` classes are
    drawn again. Classes that share a scene co-occur more than chance.

    Each class but the head has a home scene, where a share
    ``scene_affinity`` of its images lie (the rest follows the scene prior);
    the home scenes are dealt out evenly over the classes in a random
    order. The head class (like COCO's 'person') is in every scene, at a
    rate that varies by scene. The presences are calibrated (fixed-point
    iteration on one factor per class, with the exact count distribution
    of every scene, :func:`count_without_each_class`) so that the expected
    fraction of images holding class ``k`` is exactly ``frequencies[k]``
    *after* the redraws: the mean number of positives per image is then
    ``frequencies.sum()``.

    Args:
        frequencies (np.ndarray): ``(K,)`` target fractions of images per
            class (the head is the largest).
        num_scenes (int): Latent scenes.
        scene_affinity (float): Share of a class's images in its home scene
            beyond what the scene prior gives it, in [0, 1].
        max_positives (int): Most classes in one image.
        rng (np.random.Generator): Draws the scene prior, the head's
            per-scene rates and the home scenes.
    """

    #: no class is certain in any scene
    MAX_PRESENCE = 0.95

    def __init__(self, frequencies: np.ndarray, num_scenes: int,
                 scene_affinity: float, max_positives: int,
                 rng: np.random.Generator):
        frequencies = np.asarray(frequencies, np.float64)
        num_classes = len(frequencies)
        self.frequencies = frequencies
        self.max_positives = int(max_positives)
        prior = rng.dirichlet(np.full(num_scenes, 5.))
        head = int(np.argmax(frequencies))
        # share of each class's images in each scene: q[s, k]
        share = (1. - scene_affinity) * np.repeat(
            prior[:, None], num_classes, axis=1)
        others = np.delete(np.arange(num_classes), head)
        home = rng.permutation(np.arange(len(others)) % num_scenes)
        share[home, others] += scene_affinity
        head_rate = prior * rng.uniform(0.25, 1.75, num_scenes)
        share[:, head] = head_rate / head_rate.sum()
        self.prior = prior
        self.home_scene = np.full(num_classes, -1)
        self.home_scene[others] = home
        self.presence, self.accept_rate = self._calibrate(share / prior[:,
                                                                          None])

    def _conditioned(self, presence):
        """Expected class fractions and the acceptance rate under the
        redraws (1 <= positives <= max_positives)."""
        cap = self.max_positives
        without = count_without_each_class(presence, cap)
        # P(k present and accepted | s) = p_sk P(others <= cap - 1 | s)
        joint = presence * without[..., :cap].sum(-1)
        # P(accepted | s) = P(1 <= n <= cap | s)
        counts = _count_prefix(presence, cap + 1)[:, -1]
        accept = counts[:, 1:cap + 1].sum(-1)
        rate = float(self.prior @ accept)
        return (self.prior @ joint) / rate, rate

    def _calibrate(self, shape: np.ndarray, max_iter: int = 2000,
                   tol: float = 1e-7):
        factor = np.ones(len(self.frequencies))
        for _ in range(max_iter):
            presence = np.minimum(self.MAX_PRESENCE,
                                  factor * self.frequencies * shape)
            realised, rate = self._conditioned(presence)
            error = np.max(np.abs(realised / self.frequencies - 1.))
            if error < tol:
                return presence, rate
            factor *= self.frequencies / realised
        raise ValueError(
            'CocoLikeDigits: the scene label model cannot realise the class '
            f'fractions (largest relative error {error:.2g} after {max_iter}'
            ' iterations); lower head_fraction or mean_positives, or raise '
            'max_objects or num_scenes.')

    def expected_frequencies(self) -> np.ndarray:
        """The calibrated model's expected fraction of images per class."""
        return self._conditioned(self.presence)[0]

    def _draw(self, num: int, rng: np.random.Generator, scene_weights,
              forced: Optional[int] = None) -> np.ndarray:
        out = np.zeros((num, len(self.frequencies)), bool)
        filled = 0
        while filled < num:
            batch = int((num - filled) / self.accept_rate * 1.2) + 16
            scenes = rng.choice(len(self.prior), size=batch, p=scene_weights)
            labels = rng.random((batch, out.shape[1])) < self.presence[scenes]
            if forced is not None:
                labels[:, forced] = True
            count = labels.sum(1)
            labels = labels[(count >= 1) & (count <= self.max_positives)]
            labels = labels[:num - filled]
            out[filled:filled + len(labels)] = labels
            filled += len(labels)
        return out

    def sample(self, num: int, rng: np.random.Generator) -> np.ndarray:
        """``(num, K)`` bool label sets drawn from the model."""
        return self._draw(num, rng, self.prior)

    def sample_with(self, cls: int, num: int,
                    rng: np.random.Generator) -> np.ndarray:
        """``(num, K)`` label sets drawn from the model conditioned on
        holding class ``cls`` (its scene from the posterior given ``cls``).
        """
        without = count_without_each_class(self.presence,
                                           self.max_positives)
        weights = self.prior * self.presence[:, cls] * without[
            :, cls, :self.max_positives].sum(-1)
        return self._draw(num, rng, weights / weights.sum(), forced=cls)


@DATASETS.register_module()
class CocoLikeDigits(BaseMultiLabelDataset):
    """COCO-shaped multi-label digits: 80 classes (10 digit shapes x 8
    colours, a class is e.g. ``'red 3'``), built from scikit-learn's bundled
    handwritten digits (no download).

    **Images.** RGB ``canvas_size``² uint8 canvases holding one object per
    positive class: a handwritten 8x8 base digit of the class's shape,
    resized to a random side in ``digit_size``, coloured with the class's
    colour (:data:`COLOURS`) and pasted at the least occupied of 8 random
    places (overlaps merged by maximum; :func:`paste_digit`, shared with
    :class:`LongTailMultiDigits`), in a random order. As in
    :class:`LongTailMultiDigits` the 1797 base digits are split per digit
    into train and test digits *before* composing (``test_fraction``): no
    test image shares a handwritten digit with the training set.

    **Labels.** Label sets come from a seeded :class:`SceneLabelModel`: a
    latent scene per image, classes present independently given the scene,
    1 to ``max_objects`` classes per image. The class fractions follow
    :func:`coco_like_frequencies` (COCO 2017 train, published /
    approximate: 'person' in ~54% of the images, the rarest class 'hair
    drier' in ~0.16%, ~2.9 positive categories per image), assigned to the
    80 classes in a seeded random order, so the head class is some coloured
    digit. Each class but the head belongs mostly to one scene
    (``scene_affinity``), so the classes of a scene co-occur more than
    chance, as COCO's kitchen or street objects do.

    - ``split='train'``: ``num_train_images`` images drawn from the model
      (the natural long tail).
    - ``split='test'``: ``num_test_images`` images drawn from the model,
      then, for every class with fewer than ``min_test_positives``
      positives (rarest first), images drawn from the model conditioned on
      holding that class until it has them, so that every class's AP is
      measured on enough positives; the result is shuffled.

    The label model depends on ``seed`` and the label-model arguments only
    (not on ``split`` or the sizes), so both splits and any training set
    size share it. Everything is drawn from ``numpy`` generators seeded by
    ``seed``: the same arguments give the same labels and images on every
    machine and rank.

    **Cost.** The data list holds the labels and each image's layout (base
    digits, sizes, candidate places); an image is rendered the first time
    its data info is read in a process (about 0.5 ms) and kept
    (``canvas_size``² x 3 bytes: 10 MB for 1,500 images of 48²), so
    persistent dataloader workers render each image once. Building a
    split of 10,000 images takes about a second, and the label-only uses
    (``get_tristate_labels``, ``get_class_counts``, the metrics' training
    counts, label wrappers selecting a subset) never render.

    Args:
        split (str): ``'train'`` or ``'test'``. Defaults to ``'train'``.
        num_train_images (int): Size of the train split. Defaults to 1500.
        num_test_images (int): Images of the test split before the top-up.
            Defaults to 2000.
        min_test_positives (int): Least positives of every class in the
            test split. Defaults to 15.
        max_objects (int): Most classes (objects) in one image.
            Defaults to 8.
        canvas_size (int): Side of the square image. Defaults to 48.
        digit_size (tuple[int, int]): Range of an object's side in pixels.
            Defaults to (12, 20).
        head_fraction (float): Images holding the head class.
            Defaults to 0.54.
        second_fraction (float): Images holding the second class.
            Defaults to 0.11.
        tail_fraction (float): Images holding the rarest class.
            Defaults to 0.002.
        mean_positives (float): Mean positives per image.
            Defaults to 2.9.
        num_scenes (int): Latent scenes of the label model. Defaults to 12.
        scene_affinity (float): How much of a class lies in its home scene,
            in [0, 1]; 0 gives no co-occurrence beyond the head class's.
            Defaults to 0.8.
        test_fraction (float): Fraction of each digit's base images kept
            for the test split. Defaults to 0.5.
        seed (int): Seed of the whole construction. Defaults to 0.
        **kwargs: Other arguments of mmengine's ``BaseDataset``
            (``pipeline``, ``test_mode``, ``indices``, ...).
    """

    METAINFO = {'classes': COCO_LIKE_CLASSES}

    def __init__(self,
                 split: str = 'train',
                 num_train_images: int = 1500,
                 num_test_images: int = 2000,
                 min_test_positives: int = 15,
                 max_objects: int = 8,
                 canvas_size: int = 48,
                 digit_size: Tuple[int, int] = (12, 20),
                 head_fraction: float = 0.54,
                 second_fraction: float = 0.11,
                 tail_fraction: float = 0.002,
                 mean_positives: float = 2.9,
                 num_scenes: int = 12,
                 scene_affinity: float = 0.8,
                 test_fraction: float = 0.5,
                 seed: int = 0,
                 **kwargs):
        name = type(self).__name__
        if split not in ('train', 'test'):
            raise ValueError(f"{name}: split must be 'train' or 'test', got "
                             f'split={split!r}.')
        for option, value, least in (('num_train_images', num_train_images,
                                      1), ('num_test_images',
                                           num_test_images, 1),
                                     ('min_test_positives',
                                      min_test_positives, 0),
                                     ('num_scenes', num_scenes, 1)):
            if int(value) != value or value < least:
                raise ValueError(f'{name}: {option} must be an integer >= '
                                 f'{least}, got {option}={value!r}.')
        num_classes = len(COCO_LIKE_CLASSES)
        if int(max_objects) != max_objects or not \
                1 <= max_objects <= num_classes:
            raise ValueError(f'{name}: max_objects must be an integer in [1, '
                             f'{num_classes}], got max_objects='
                             f'{max_objects!r}.')
        if not mean_positives < max_objects:
            raise ValueError(f'{name}: mean_positives={mean_positives} must '
                             f'be below max_objects={max_objects}.')
        if len(digit_size) != 2 or not \
                0 < digit_size[0] <= digit_size[1] <= canvas_size:
            raise ValueError(f'{name}: digit_size={tuple(digit_size)} must '
                             'be (low, high) with 0 < low <= high <= '
                             f'canvas_size={canvas_size}.')
        if not 0 <= scene_affinity <= 1:
            raise ValueError(f'{name}: scene_affinity must be in [0, 1], got '
                             f'scene_affinity={scene_affinity}.')
        if not 0 < test_fraction < 1:
            raise ValueError(f'{name}: test_fraction must be in (0, 1), got '
                             f'test_fraction={test_fraction}.')
        self.split = split
        self.num_train_images = int(num_train_images)
        self.num_test_images = int(num_test_images)
        self.min_test_positives = int(min_test_positives)
        self.max_objects = int(max_objects)
        self.canvas_size = int(canvas_size)
        self.digit_size = (int(digit_size[0]), int(digit_size[1]))
        self.num_scenes = int(num_scenes)
        self.scene_affinity = float(scene_affinity)
        self.test_fraction = float(test_fraction)
        self.seed = seed
        self._canvases = {}  # rendered images by ``img_id``, per process
        # validated here, before any dataset machinery runs
        self.class_fractions = coco_like_frequencies(
            num_classes, head_fraction, second_fraction, tail_fraction,
            mean_positives)
        self.head_fraction = head_fraction
        self.second_fraction = second_fraction
        self.tail_fraction = tail_fraction
        self.mean_positives = mean_positives
        super().__init__(ann_file='', **kwargs)

    # -- the parts a variant replaces -----------------------------------------
    def label_model(self) -> SceneLabelModel:
        """The scene label model of this seed: the class fractions dealt to
        the classes in a seeded random order (head first)."""
        rng = np.random.default_rng([self.seed, 0x4c4d])  # 'LM'
        frequencies = np.empty(len(COCO_LIKE_CLASSES))
        frequencies[rng.permutation(len(frequencies))] = self.class_fractions
        return SceneLabelModel(frequencies, self.num_scenes,
                               self.scene_affinity, self.max_objects, rng)

    def _base_digits(self) -> Tuple[np.ndarray, List[np.ndarray]]:
        """The pool of 8x8 base digits and, per digit shape, the ids (rows
        of the pool) this split may use."""
        images, target = load_digit_images()
        train_idx, test_idx = split_digit_indices(
            target, self.test_fraction, np.random.default_rng(self.seed))
        kept = test_idx if self.split == 'test' else train_idx
        return images, [
            kept[target[kept] == d] for d in range(len(DIGIT_CLASSES))
        ]

    def _label_sets(self, rng: np.random.Generator) -> np.ndarray:
        """``(N, K)`` bool label sets of this split."""
        model = self.label_model()
        if self.split == 'train':
            return model.sample(self.num_train_images, rng)
        labels = [model.sample(self.num_test_images, rng)]
        counts = labels[0].sum(0)
        for cls in np.argsort(counts, kind='stable'):
            missing = self.min_test_positives - counts[cls]
            if missing > 0:
                extra = model.sample_with(int(cls), int(missing), rng)
                labels.append(extra)
                counts = counts + extra.sum(0)
        labels = np.concatenate(labels)
        return labels[rng.permutation(len(labels))]

    # -- building ---------------------------------------------------------------
    def load_data_list(self) -> List[dict]:
        pool, ids_by_digit = self._base_digits()
        self._digit_pool = pool
        rng = np.random.default_rng([self.seed, 1 + (self.split == 'test')])
        labels = self._label_sets(rng)
        num_images, num_classes = labels.shape
        # one object per positive, all images at once; a random paste order
        image, cls = np.nonzero(labels)
        order = np.lexsort((rng.random(len(image)), image))
        image, cls = image[order], cls[order]
        digit, colour = cls // len(COLOURS), cls % len(COLOURS)
        sizes = np.array([len(ids) for ids in ids_by_digit])
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        flat_ids = np.concatenate(ids_by_digit)
        pick = (rng.random(len(cls)) * sizes[digit]).astype(np.int64)
        digit_ids = flat_ids[starts[digit] + pick]
        low, high = self.digit_size
        sides = rng.integers(low, high + 1, size=len(cls))
        room = self.canvas_size - sides + 1
        corners = (rng.random((len(cls), 8, 2)) *
                   room[:, None, None]).astype(np.int64)
        bounds = np.searchsorted(image, np.arange(num_images + 1))
        data_list = []
        for i in range(num_images):
            sl = slice(bounds[i], bounds[i + 1])
            positives = np.flatnonzero(labels[i])
            data_list.append(
                dict(
                    img_id=i,
                    gt_label=positives.tolist(),
                    gt_tristate=tristate_from_positives(
                        positives, num_classes),
                    digit_ids=digit_ids[sl].astype(np.int32),
                    colours=colour[sl].astype(np.uint8),
                    sides=sides[sl].astype(np.int16),
                    corners=corners[sl].astype(np.int16)))
        return data_list

    def render(self, info: dict) -> np.ndarray:
        """The ``(H, W, 3)`` uint8 RGB canvas of a data info's layout."""
        size = self.canvas_size
        canvas = np.zeros((size, size, 3), np.uint8)
        occupied = np.zeros((size, size), bool)
        for digit_id, colour, side, corners in zip(info['digit_ids'],
                                                   info['colours'],
                                                   info['sides'],
                                                   info['corners']):
            paste_digit(canvas, occupied, self._digit_pool[digit_id],
                        int(side), corners.astype(np.int64),
                        COLOUR_VALUES[colour])
        return canvas

    def _label_info(self, idx: int) -> dict:
        """The data info without its image."""
        return super().get_data_info(idx)

    def get_data_info(self, idx: int) -> dict:
        info = self._label_info(idx)
        canvas = self._canvases.get(info['img_id'])
        if canvas is None:
            canvas = self._canvases[info['img_id']] = self.render(info)
        info['img'] = canvas.copy()
        info['img_shape'] = info['ori_shape'] = info['img'].shape[:2]
        return info

    def get_tristate_labels(self) -> np.ndarray:
        """The ``(N, K)`` int8 labels, read without rendering any image."""
        self._fully_initialized or self.full_init()
        cached = getattr(self, '_tristate_cache', None)
        if cached is None or len(cached) != len(self):
            cached = np.zeros((len(self), len(COCO_LIKE_CLASSES)), np.int8)
            for i in range(len(self)):
                cached[i] = self._label_info(i)['gt_tristate']
            self._tristate_cache = cached
        return cached

    def get_cat_ids(self, idx: int) -> List[int]:
        return list(self._label_info(idx)['gt_label'])

    def extra_repr(self) -> List[str]:
        return [
            f'Split: \t{self.split}',
            f'Canvas size: \t{self.canvas_size}',
            f'Max objects: \t{self.max_objects}',
            f'Seed: \t{self.seed}',
        ]


@DATASETS.register_module()
class PrintedCocoLikeDigits(CocoLikeDigits):
    """Canvases of **printed** coloured digits: the pre-training set of the
    COCO-shaped benchmark's backbone, as :class:`PrintedMultiDigits` is for
    the grey digits (the embedded stand-in for ImageNet pre-training).

    The 80 classes of :class:`CocoLikeDigits` (10 digit shapes x 8 colours)
    drawn with OpenCV's Hershey fonts (:func:`render_printed_digit`: random
    font, thickness, slant, rotation, reduced to scikit-learn's 8x8 format)
    and composed on canvases exactly as :class:`CocoLikeDigits` composes the
    handwritten ones. The labels are balanced and clean: each image holds 1
    to ``max_objects`` distinct classes, uniformly chosen. No handwritten
    digit is used.

    Args:
        num_images (int): Canvases. Defaults to 6000.
        digits_per_class (int): Printed base digits rendered per digit
            shape. Defaults to 200.
        max_objects (int): Most classes in one image. Defaults to 4.
        seed (int): Seed of the rendering and the composition.
        **kwargs: :class:`CocoLikeDigits` arguments (``canvas_size``,
            ``digit_size``, ``pipeline`` ...).
    """

    def __init__(self,
                 num_images: int = 6000,
                 digits_per_class: int = 200,
                 max_objects: int = 4,
                 seed: int = 0,
                 **kwargs):
        name = type(self).__name__
        for option, value in (('num_images', num_images),
                              ('digits_per_class', digits_per_class)):
            if int(value) != value or value < 1:
                raise ValueError(f'{name}: {option} must be an integer >= 1,'
                                 f' got {option}={value!r}.')
        self.num_images = int(num_images)
        self.digits_per_class = int(digits_per_class)
        # the label model's mean must stay below max_objects; unused here
        kwargs.setdefault('mean_positives', min(2.9, max_objects - 0.5))
        super().__init__(
            split='train', max_objects=max_objects, seed=seed, **kwargs)

    def _base_digits(self):
        rng = np.random.default_rng([self.seed, 0x5052])  # 'PR'
        count = self.digits_per_class
        pool = np.stack([
            render_printed_digit(digit, rng)
            for digit in range(len(DIGIT_CLASSES)) for _ in range(count)
        ])
        return pool, [
            np.arange(digit * count, (digit + 1) * count)
            for digit in range(len(DIGIT_CLASSES))
        ]

    def _label_sets(self, rng):
        image_classes = sample_balanced_images(
            self.num_images, len(COCO_LIKE_CLASSES), self.max_objects, rng)
        labels = np.zeros((self.num_images, len(COCO_LIKE_CLASSES)), bool)
        rows = np.repeat(np.arange(self.num_images),
                         [len(c) for c in image_classes])
        labels[rows, np.concatenate(image_classes)] = True
        return labels

    def extra_repr(self) -> List[str]:
        return [
            f'Printed digits per class: \t{self.digits_per_class}',
            f'Number of canvases: \t{self.num_images}',
            f'Seed: \t{self.seed}',
        ]
