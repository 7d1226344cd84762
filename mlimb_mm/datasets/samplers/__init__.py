from .class_aware_sampler import ClassAwareSampler
from .class_members import ClassMembers, dataset_positive_labels

__all__ = ['ClassAwareSampler', 'ClassMembers', 'dataset_positive_labels']
