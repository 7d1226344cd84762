# Variant, not in the paper: the method of ./resnet18_cocolike_ppl60_pseudo.py
# with alpha / beta on the observed labels only (balance_pseudo=False): the
# pseudo-label part is plain BCE towards the pseudo labels. As printed
# (Eq. 11), alpha > beta on the pseudo-label part moves its optimum above
# the pseudo label, and the pseudo labels drift towards 1 (README, "alpha
# and beta on the pseudo labels").
_base_ = ['./resnet18_cocolike_ppl60_pseudo.py']
model = dict(head=dict(loss=dict(balance_pseudo=False)))
