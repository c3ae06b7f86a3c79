"""tools/main.py with the synthetic data set registered, for tests that must run a training in a
process of its own (to kill it, or to time it out if it hangs).

argv: main.py's arguments. Environment, to break the loader on purpose:
  PV_TEST_SAMPLER_FAILS_AT=N   the training batch sampler raises RuntimeError at batch N
  PV_TEST_LOAD_FAILS_AT=I      loading sample I raises ValueError (not a SampleError: a bug)
  PV_TEST_SLOW_LOAD=S          each sample takes S more seconds to load
"""
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

import synthetic  # noqa: E402  (registers SyntheticMotion)
from paddlevideo.loader import ShuffledBatchSampler  # noqa: E402
from paddlevideo.tasks.cli import main  # noqa: E402

fails_at = os.environ.get("PV_TEST_SAMPLER_FAILS_AT")
if fails_at:
    batches = ShuffledBatchSampler.__iter__

    def failing(sampler):
        for number, batch in enumerate(batches(sampler)):
            if number == int(fails_at):
                raise RuntimeError(f"sampler broke at batch {number}")
            yield batch
    ShuffledBatchSampler.__iter__ = failing

load = synthetic.SyntheticMotion.load
bad_sample = os.environ.get("PV_TEST_LOAD_FAILS_AT")
delay = float(os.environ.get("PV_TEST_SLOW_LOAD", 0))


def patched_load(dataset, i, rng=None):
    if bad_sample and i == int(bad_sample):
        raise ValueError(f"cannot load sample {i}: a bug in the dataset")
    if delay:
        time.sleep(delay)
    return load(dataset, i, rng)


synthetic.SyntheticMotion.load = patched_load
sys.exit(main(sys.argv[1:]))
