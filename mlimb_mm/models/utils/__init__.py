from .balance_mix import BalanceMix, balance_mix, sample_balance_lambda
from .gmm import GMMFit, fit_gmm_1d, fit_gmm_1d_padded, minmax_normalize
from .label_refinement import (AMBIGUOUS, CLEAN, RELABELLED, UNKNOWN,
                               categorize_labels, fit_label_gmms,
                               group_quality, label_gmm_groups,
                               quality_counts, rank_untrusted_labels,
                               summarize_categories)
from .plm import (dataset_ratios, draw_masks, initial_ratio,
                  keep_probabilities, plm_divergences, ratio_step)

__all__ = [
    'BalanceMix', 'balance_mix', 'sample_balance_lambda', 'GMMFit',
    'fit_gmm_1d', 'fit_gmm_1d_padded', 'fit_label_gmms', 'label_gmm_groups',
    'minmax_normalize', 'UNKNOWN', 'CLEAN', 'RELABELLED', 'AMBIGUOUS',
    'categorize_labels', 'summarize_categories', 'quality_counts',
    'group_quality', 'rank_untrusted_labels', 'dataset_ratios', 'draw_masks',
    'initial_ratio', 'keep_probabilities', 'plm_divergences', 'ratio_step'
]

# partially annotated labels (Zhang et al.)
from .partial_labels import (all_negative_penalty, batch_balance,  # noqa
                             dynamic_coefficient, dynamic_partial_terms,
                             initial_pseudo_labels, merge_predictions,
                             pick_unknown, pseudo_label_quality)

__all__ += [
    'all_negative_penalty', 'batch_balance', 'dynamic_coefficient',
    'dynamic_partial_terms', 'initial_pseudo_labels', 'merge_predictions',
    'pick_unknown', 'pseudo_label_quality'
]

from . import comic  # noqa: E402,F401  (COMIC, Zhang et al., ICCV 2023)
