from typing import List

import cv2
import numpy as np
from mmpretrain.registry import DATASETS

from .long_tail_multi_digits import (DIGIT_CLASSES, LongTailMultiDigits,
                                     sample_balanced_images)

#: OpenCV's Hershey fonts (always available, no font file needed)
HERSHEY_FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_PLAIN,
                 cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX,
                 cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_COMPLEX_SMALL,
                 cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
                 cv2.FONT_HERSHEY_SCRIPT_COMPLEX)


def render_printed_digit(digit: int, rng: np.random.Generator,
                         size: int = 32) -> np.ndarray:
    """One printed digit as an 8x8 uint8 image in the style of
    scikit-learn's digits: drawn with a random Hershey font, thickness,
    slant and rotation on a ``size``² canvas, cropped to its bounding box
    (padded to a square), area-resized to 8x8 and quantised to 17 grey
    levels (sklearn's 0..16) scaled to 0..255."""
    font = HERSHEY_FONTS[int(rng.integers(len(HERSHEY_FONTS)))]
    if rng.random() < 0.3:
        font |= cv2.FONT_ITALIC
    thickness = int(rng.integers(2, 5))
    canvas = np.zeros((size, size), np.uint8)
    (w, h), _ = cv2.getTextSize(str(digit), font, 1.0, thickness)
    scale = 0.7 * size / max(w, h)
    (w, h), _ = cv2.getTextSize(str(digit), font, scale, thickness)
    org = ((size - w) // 2, (size + h) // 2)
    cv2.putText(canvas, str(digit), org, font, scale, 255, thickness,
                cv2.LINE_AA)
    angle = rng.uniform(-15, 15)
    shear = rng.uniform(-0.2, 0.2)
    affine = cv2.getRotationMatrix2D((size / 2, size / 2), angle, 1.0)
    affine[0, 1] += shear
    affine[0, 2] -= shear * size / 2
    canvas = cv2.warpAffine(canvas, affine, (size, size))
    ys, xs = np.nonzero(canvas)
    if len(ys) == 0:  # cannot happen with the fonts above; be safe
        return np.zeros((8, 8), np.uint8)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    side = max(y1 - y0, x1 - x0) + 2
    square = np.zeros((side, side), np.uint8)
    oy, ox = (side - (y1 - y0)) // 2, (side - (x1 - x0)) // 2
    square[oy:oy + y1 - y0, ox:ox + x1 - x0] = canvas[y0:y1, x0:x1]
    small = cv2.resize(square, (8, 8), interpolation=cv2.INTER_AREA)
    small = small.astype(np.float64) / max(int(small.max()), 1)
    return np.round(np.round(small * 16) * (255 / 16)).astype(np.uint8)


@DATASETS.register_module()
class PrintedMultiDigits(LongTailMultiDigits):
    """Multi-label canvases of **printed** digits: the embedded stand-in for
    ImageNet pre-training.

    The methods of the noisy-label papers (BalanceMix, Song et al. 2024:
    "ResNet-50 pre-trained on ImageNet-1K") fine-tune a backbone that
    already sees objects; the memorisation-based label management of
    BalanceMix needs a warm-up model that has learned the clean patterns
    first. A network trained from scratch on the 1238 noisy digits images
    learns next to nothing for most of its schedule. This dataset gives the
    digits benchmarks their own pre-training source, disjoint from the
    handwritten benchmark data: digits drawn with OpenCV's Hershey fonts
    (random font, thickness, slant, rotation), reduced to scikit-learn's
    8x8 / 17-level format and composed on canvases exactly as
    :class:`LongTailMultiDigits` composes the handwritten ones (1 to
    ``max_digits`` distinct digits, uniformly chosen: balanced, clean
    labels). No handwritten digit, train or test, is used.

    Args:
        num_images (int): Canvases. Defaults to 4000.
        digits_per_class (int): Printed base digits rendered per class.
            Defaults to 200.
        seed (int): Seed of the rendering and the composition.
        **kwargs: :class:`LongTailMultiDigits` arguments (``max_digits``,
            ``canvas_size``, ``digit_size``, ``pipeline`` ...).
    """

    METAINFO = {'classes': DIGIT_CLASSES}

    def __init__(self,
                 num_images: int = 4000,
                 digits_per_class: int = 200,
                 seed: int = 0,
                 **kwargs):
        if num_images < 1 or digits_per_class < 1:
            raise ValueError('PrintedMultiDigits: num_images and '
                             'digits_per_class must be >= 1, got '
                             f'{num_images} and {digits_per_class}.')
        self.num_images = int(num_images)
        self.digits_per_class = int(digits_per_class)
        super().__init__(split='train', seed=seed, **kwargs)

    def _split_base_digits(self, rng) -> List[np.ndarray]:
        return [
            np.stack([
                render_printed_digit(cls, rng)
                for _ in range(self.digits_per_class)
            ]) for cls in range(len(DIGIT_CLASSES))
        ]

    def load_data_list(self):
        rng = np.random.default_rng([self.seed, 0x5052])  # 'PR'
        base_digits = self._split_base_digits(rng)
        image_classes = sample_balanced_images(self.num_images,
                                               len(DIGIT_CLASSES),
                                               self.max_digits, rng)
        return self._compose(image_classes, base_digits, rng)

    def extra_repr(self) -> List[str]:
        return [
            f'Printed digits per class: \t{self.digits_per_class}',
            f'Number of canvases: \t{self.num_images}',
            f'Seed: \t{self.seed}',
        ]

