from .balance_mix_sampler import BalanceMixSampler
from .class_aware_sampler import ClassAwareSampler
from .class_members import ClassMembers, dataset_positive_labels
from .minority_sampler import (MinoritySampler, class_confidences,
                               confidence_sums, minority_probabilities,
                               minority_sampling_probabilities,
                               minority_scores)
from .undersampler import ClassUndersampler

__all__ = [
    'BalanceMixSampler',
    'ClassAwareSampler', 'ClassMembers', 'dataset_positive_labels',
    'ClassUndersampler', 'MinoritySampler', 'class_confidences',
    'confidence_sums', 'minority_probabilities',
    'minority_sampling_probabilities', 'minority_scores'
]

from .comic_sampler import COMICSampler  # noqa: E402

__all__ += ['COMICSampler']
