"""One curve per class over training epochs, head classes first: the
figure shared by the per-class history plots (PLM ratios, BalanceMix
minority sampling)."""
import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_class_curves(epochs, values, classes, head_first, ylabel: str,
                      title: str):
    """A figure with one line per class, coloured from head (dark) to tail
    (light).

    Args:
        epochs: ``(E,)`` x values.
        values: ``(E, K)`` y values, one column per class.
        classes: The ``K`` class names (the legend).
        head_first: Class indices in plotting order, head class first.
        ylabel (str): Label of the y axis.
        title (str): Title of the axes.

    Returns:
        tuple: ``(fig, ax)``, for the caller to add to (then
        ``fig.tight_layout()``).
    """
    colours = plt.cm.viridis(np.linspace(0, 0.9, len(head_first)))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for colour, cls in zip(colours, head_first):
        ax.plot(epochs, values[:, cls], color=colour, marker='.',
                label=str(classes[cls]))
    ax.set_xlabel('epoch')
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(title='class (head first)', fontsize=7, ncol=2)
    return fig, ax
