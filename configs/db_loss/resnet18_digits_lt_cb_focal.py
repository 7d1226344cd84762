# CB-Focal (Table 2) with class-aware re-sampling on the embedded long-tailed digits.
_base_ = ['./resnet18_digits_lt_rs.py']
model = dict(head=dict(loss=dict(preset='CB-Focal')))
