"""The confusion matrix of a test, as a picture and as a list of the worst confusions.

Rows are true classes, columns predicted ones. The numbers in the cells are video counts; the
colours are shares of the row (the true class's videos), so a class with few test videos shows
its errors as clearly as a large one. Up to `max_classes` classes the whole matrix is drawn with
every name in full. A larger matrix (UCF101's 101 classes, Kinetics' 400) cannot be read at any
size, so the picture shows the part that matters: the sub-matrix of the `max_classes` classes
met first when walking the confusions from the largest down (`most_confused_classes`), with one
more column for the row's videos predicted as any class not shown, so every row still adds up
to its class's videos. `worst_pairs` lists the largest confusions for the log and the JSON.

Drawn with matplotlib's object API (a Figure rendered to PNG by Agg, never pyplot): no window,
no display, and the backend a notebook or a caller chose is left alone.
"""
import numpy as np

__all__ = ["confusion_matrix", "worst_pairs", "most_confused_classes", "write_confusion_png"]

_CELL_INCHES = 0.36         # one cell of the picture; counts stay legible up to `max_classes`


def confusion_matrix(labels, preds, num_classes):
    """counts[i, j]: videos of true class i predicted as j."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels, dtype=np.int64), np.asarray(preds, dtype=np.int64)), 1)
    return matrix


def _row_shares(matrix):
    rows = matrix.sum(axis=1, keepdims=True).astype(np.float64)
    return np.divide(matrix, rows, out=np.zeros(matrix.shape, dtype=np.float64), where=rows > 0)


def worst_pairs(matrix, n=None):
    """The confusions (true i predicted as j, i != j), largest first: a list of
    (true, pred, count, share of the true class's videos). Ties: larger share, then indices."""
    matrix = np.asarray(matrix, dtype=np.int64)
    shares = _row_shares(matrix)
    off = matrix.copy()
    np.fill_diagonal(off, 0)
    true, pred = np.nonzero(off)
    order = np.lexsort((pred, true, -shares[true, pred], -off[true, pred]))
    pairs = [(int(true[k]), int(pred[k]), int(off[true[k], pred[k]]),
              float(shares[true[k], pred[k]])) for k in order]
    return pairs if n is None else pairs[:n]


def most_confused_classes(matrix, k):
    """The k classes to show of a large matrix, in the order to show them.

    Walks the confusions from the largest down and takes the true then the predicted class of
    each, so the classes of the worst confusions are in and sit next to each other. When fewer
    than k classes are confused at all, the classes with the lowest recall (then the lowest
    index) fill up the rest.
    """
    matrix = np.asarray(matrix, dtype=np.int64)
    k = min(int(k), matrix.shape[0])
    chosen = []
    for true, pred, _, _ in worst_pairs(matrix):
        for c in (true, pred):
            if c not in chosen and len(chosen) < k:
                chosen.append(c)
        if len(chosen) == k:
            return chosen
    recall = np.diag(_row_shares(matrix))
    for c in np.lexsort((np.arange(len(recall)), recall)):
        if len(chosen) == k:
            break
        if int(c) not in chosen:
            chosen.append(int(c))
    return chosen


def _names(class_names, k):
    if class_names is not None and len(class_names) == k:
        return [str(name) for name in class_names]
    return [str(i) for i in range(k)]


def write_confusion_png(matrix, path, class_names=None, max_classes=30, title=None):
    """Draw `matrix` (see the module doc) into the PNG `path`; return the shown class indices.

    Tick labels are the full class names with each true class's video count; cells hold counts
    (blank for 0 in large pictures), coloured by row share on a 0-1 scale with its colour bar;
    the diagonal (correct predictions) is outlined.
    """
    from matplotlib.figure import Figure      # no pyplot: no window, no global backend change
    from matplotlib.patches import Rectangle

    matrix = np.asarray(matrix, dtype=np.int64)
    total_classes = matrix.shape[0]
    names = _names(class_names, total_classes)
    partial = total_classes > max_classes
    shown = most_confused_classes(matrix, max_classes) if partial else list(range(total_classes))
    sub = matrix[np.ix_(shown, shown)]
    rows = matrix[shown].sum(axis=1)
    if partial:                          # the rest of each row: videos predicted as unshown classes
        sub = np.concatenate([sub, (rows - sub.sum(axis=1))[:, None]], axis=1)
    rows_f = rows.astype(np.float64)[:, None]
    share = np.divide(sub, rows_f, out=np.zeros(sub.shape, dtype=np.float64), where=rows_f > 0)
    n_rows, n_cols = sub.shape

    cell = max(_CELL_INCHES, min(1.2, 4.0 / n_rows))
    fig = Figure(figsize=(n_cols * cell + 2.0, n_rows * cell + 1.2), dpi=110)
    ax = fig.add_subplot()
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0, aspect="equal",
                      interpolation="nearest")
    font = 11 if n_rows <= 5 else 9 if n_rows <= 12 else 7
    for i in range(n_rows):
        for j in range(n_cols):
            if sub[i, j] == 0 and n_rows > 12:
                continue
            ax.text(j, i, str(sub[i, j]), ha="center", va="center", fontsize=font,
                    color="white" if share[i, j] > 0.55 else "black")
    for i in range(n_rows):                 # the correct predictions, outlined
        ax.add_patch(Rectangle((i - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="0.25",
                               linewidth=1.0))
    col_names = [names[c] for c in shown] + (["(other classes)"] if partial else [])
    ax.set_xticks(range(n_cols), col_names, rotation=90, fontsize=font)
    ax.set_yticks(range(n_rows), [f"{names[c]} ({rows[i]})" for i, c in enumerate(shown)],
                  fontsize=font)
    ax.set_xlabel("predicted class", fontsize=font + 1)
    ax.set_ylabel("true class (test videos)", fontsize=font + 1)
    ax.tick_params(length=0)
    ax.set_xticks(np.arange(-0.5, n_cols), minor=True)
    ax.set_yticks(np.arange(-0.5, n_rows), minor=True)
    ax.grid(which="minor", color="0.85", linewidth=0.5)
    ax.tick_params(which="minor", length=0)
    bar = fig.colorbar(image, ax=ax, fraction=0.046 if n_rows > 5 else 0.08, pad=0.02)
    bar.set_label("share of the true class's videos", fontsize=font + 1)
    bar.ax.tick_params(labelsize=font)
    videos, correct = int(matrix.sum()), int(np.trace(matrix))
    heading = title or "Confusion matrix"
    what = (f"the {len(shown)} most-confused of {total_classes} classes" if partial
            else f"{total_classes} classes")
    accuracy = f", top-1 {correct / videos:.1%}" if videos else ""
    ax.set_title(f"{heading}\n{what}, {videos} videos{accuracy}", fontsize=font + 2)
    fig.savefig(path, bbox_inches="tight")
    return shown
