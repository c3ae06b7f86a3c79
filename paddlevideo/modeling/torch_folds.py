"""The channel permutation that turns the original TSM code's shift direction into Paddle's.

The original (and mmaction2) moves channel fold 0 (fold = C // 8) from frame t+1 and fold 1 from
t-1; Paddle's fused `temporal_shift` the other way round. Swapping folds 0 and 1 of every stream
that feeds a shifted conv makes the two compute the same function (torch_tsm.py explains why).
"""
import numpy as np

__all__ = ["FOLD_DIV", "fold_swap"]

FOLD_DIV = 8          # the released checkpoints shift C // 8 channels each way (shift_div 8)


def fold_swap(channels):
    """Index array swapping channel folds 0 and 1 (fold = channels // 8); its own inverse."""
    fold = channels // FOLD_DIV
    index = np.arange(channels)
    index[:fold] += fold
    index[fold:2 * fold] -= fold
    return index
