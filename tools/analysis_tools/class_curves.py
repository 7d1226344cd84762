"""One curve per class over training epochs, head classes first: the
figure shared by the per-class history plots (PLM ratios, BalanceMix
minority sampling)."""
import matplotlib

matplotlib.use('Agg')
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


#: above this many classes the legend gives way to a colour bar
MAX_LEGEND_CLASSES = 12


def plot_class_curves(epochs, values, classes, head_first, ylabel: str,
                      title: str):
    """A figure with one line per class, coloured from head (dark) to tail
    (light): with a legend of the class names up to
    :data:`MAX_LEGEND_CLASSES` classes, with a colour bar of the classes'
    head-to-tail rank beyond (COCO's 80, Open Images' 600).

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
    num_classes = len(head_first)
    colours = plt.cm.viridis(np.linspace(0, 0.9, num_classes))
    few = num_classes <= MAX_LEGEND_CLASSES
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for colour, cls in zip(colours, head_first):
        ax.plot(epochs, values[:, cls], color=colour,
                marker='.' if few else None, lw=1.5 if few else 0.8,
                label=str(classes[cls]))
    ax.set_xlabel('epoch')
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if few:
        ax.legend(title='class (head first)', fontsize=7, ncol=2)
    else:
        ranks = plt.cm.ScalarMappable(
            cmap=matplotlib.colors.ListedColormap(colours),
            norm=plt.Normalize(0.5, num_classes + 0.5))
        bar = fig.colorbar(ranks, ax=ax)
        bar.set_label('class rank by frequency (1 = head)')
    return fig, ax
