# The embedded long-tailed digits (digits_lt.py) with 40% of the training
# positives missing (unknown, -1), negatives kept: COMIC's PLT missing rate
# on the default dataset. The metric's groups (many > 100, medium 20-100,
# few < 20) come from the long-tailed training set's full labels
# (val_evaluator of digits_lt.py, unchanged).
_base_ = ['./digits_lt.py']

missing_rate = 0.4
train_dataset = dict(
    _delete_=True,
    type='MissingLabelDataset',
    mode='missing_positives',
    missing_rate=missing_rate,
    seed=0,
    dataset=_base_.train_dataset)
train_dataloader = dict(dataset=train_dataset)
