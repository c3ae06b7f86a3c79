"""Solver: optimizer with TSM's parameter groups, and learning-rate schedules."""
from .lr import LR_SCHEDULES, build_lr
from .optimizer import build_optimizer, param_groups
