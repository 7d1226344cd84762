"""Helpers shared by the metric tests: data samples as the val loop hands
them to a metric, and a metric fed in batches."""
import torch
from mmpretrain.structures import DataSample


def to_samples(scores, tristate):
    """Packed data samples with ``pred_score`` = a row of ``scores`` and the
    ground truth of a row of ``tristate`` (1 / 0 / -1): ``gt_label``,
    ``gt_score`` and ``gt_tristate``."""
    samples = []
    for s, t in zip(scores, tristate):
        t = torch.as_tensor(t, dtype=torch.int8)
        sample = DataSample().set_gt_label(
            torch.nonzero(t == 1).flatten()).set_gt_score(
                (t == 1).float()).set_pred_score(torch.as_tensor(s))
        sample.set_field(t, 'gt_tristate')
        samples.append(sample.to_dict())
    return samples


def run_metric(metric, samples, batch):
    """``metric.process`` on batches of ``batch`` samples, then
    ``evaluate``."""
    for i in range(0, len(samples), batch):
        metric.process(None, samples[i:i + batch])
    return metric.evaluate(len(samples))
