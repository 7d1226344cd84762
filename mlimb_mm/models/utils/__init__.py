from .balance_mix import BalanceMix, balance_mix, sample_balance_lambda
from .gmm import (GMMFit, fit_gmm_1d, fit_gmm_1d_padded, fit_label_gmms,
                  label_gmm_groups, minmax_normalize)

__all__ = [
    'BalanceMix', 'balance_mix', 'sample_balance_lambda', 'GMMFit',
    'fit_gmm_1d', 'fit_gmm_1d_padded', 'fit_label_gmms', 'label_gmm_groups',
    'minmax_normalize'
]
