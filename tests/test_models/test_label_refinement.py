"""How good the label-wise management is against clean labels, and the
ranking of the labels it does not trust: counted by hand on a small case."""
import numpy as np
import pytest
import torch

from mlimb_mm.models.utils.label_refinement import (AMBIGUOUS, CLEAN,
                                                    RELABELLED, UNKNOWN,
                                                    group_quality,
                                                    quality_counts,
                                                    rank_untrusted_labels)

C, R, A, U = CLEAN, RELABELLED, AMBIGUOUS, UNKNOWN


def small_case():
    # 4 images x 3 classes
    observed = torch.tensor([[1, 0, -1],
                             [0, 1, 0],
                             [1, 1, 0],
                             [0, 0, 1]], dtype=torch.int8)
    truth = np.array([[1, 1, 0],
                      [0, 0, 0],
                      [0, 1, -1],
                      [0, 1, 1]], dtype=np.int8)
    category = torch.tensor([[C, R, U],
                             [C, R, C],
                             [A, C, C],
                             [C, A, C]], dtype=torch.int8)
    targets = torch.tensor([[1., 1., 0.],
                            [0., 1., 0.],
                            [1., 1., 0.],
                            [0., 0., 1.]])
    return observed, truth, category, targets


def test_quality_counts_by_hand():
    observed, truth, category, targets = small_case()
    counts = quality_counts(category, observed, targets, truth)
    # class 0: 4 comparable, wrong at (2, 0); marked clean (0,0) (1,0)
    # (3,0), all correct
    # class 1: 4 comparable; wrong (0, 1), (1, 1), (3, 1); re-labelled
    # (0, 1) -> 1 (right) and (1, 1) -> 1 (wrong); clean (2, 1) correct
    # class 2: (0, 2) unknown in observed, (2, 2) unknown in truth: 2
    # comparable, both correct and clean
    expected = dict(comparable=[4, 4, 2], correct=[3, 1, 2],
                    marked_clean=[3, 1, 2], correct_marked_clean=[3, 1, 2],
                    relabelled=[0, 2, 0], relabelled_right=[0, 1, 0],
                    wrong=[1, 3, 0], wrong_fixed=[0, 1, 0])
    assert {k: v.tolist() for k, v in counts.items()} == expected


def test_group_quality_by_hand():
    observed, truth, category, targets = small_case()
    counts = quality_counts(category, observed, targets, truth)
    quality = group_quality(counts, dict(head=np.array([0]),
                                         rest=np.array([1, 2]),
                                         empty=np.array([], np.int64)))
    assert quality['all'] == dict(classes=None, observed_precision=6 / 10,
                                  clean_precision=1.0, clean_recall=1.0,
                                  relabel_precision=0.5,
                                  relabel_recall=1 / 4)
    assert quality['head']['observed_precision'] == 3 / 4
    assert quality['head']['relabel_precision'] is None  # none re-labelled
    assert quality['rest'] == dict(classes=2, observed_precision=3 / 6,
                                   clean_precision=1.0, clean_recall=1.0,
                                   relabel_precision=0.5,
                                   relabel_recall=1 / 3)
    assert quality['empty']['clean_precision'] is None
    with pytest.raises(ValueError, match='clean labels'):
        quality_counts(category, observed, targets, truth[:2])


def test_untrusted_labels_ranked_least_trustworthy_first():
    observed, _, category, _ = small_case()
    clean_prob = torch.tensor([[0.9, 0.1, 0.0],
                               [0.8, 0.3, 0.7],
                               [0.2, 0.6, 0.95],
                               [0.99, 0.1, 0.55]])
    images, classes = rank_untrusted_labels(observed, clean_prob, category)
    # not clean: (0,1) 0.1, (1,1) 0.3, (2,0) 0.2, (3,1) 0.1; ties keep the
    # (image, class) order; the unknown (0, 2) is never listed
    assert list(zip(images.tolist(), classes.tolist())) == [
        (0, 1), (3, 1), (2, 0), (1, 1)]
    images, classes = rank_untrusted_labels(observed, clean_prob, category,
                                            include_clean=True)
    assert len(images) == 11  # every observed label
    values = clean_prob[images, classes]
    assert torch.all(values[1:] >= values[:-1])
