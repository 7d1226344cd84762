from .class_aware_sampler import ClassAwareSampler
from .class_members import ClassMembers, dataset_positive_labels
from .undersampler import ClassUndersampler

__all__ = [
    'ClassAwareSampler', 'ClassMembers', 'dataset_positive_labels',
    'ClassUndersampler'
]
