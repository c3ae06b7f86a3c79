"""Make the synthetic data set importable and registered for the task tests."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import synthetic  # noqa: E402,F401  (registers DATASET format SyntheticMotion)
