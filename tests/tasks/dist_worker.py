"""One rank of the 2-process CPU training test (started by paddle.distributed.launch).

argv: CONFIG OUT. Trains, then writes OUT/rank<r>.npz with every parameter and buffer.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(os.path.dirname(HERE)))

from paddlevideo.utils.env import configure_cpu_threads  # noqa: E402

configure_cpu_threads()

import numpy as np  # noqa: E402
import paddle.distributed as dist  # noqa: E402

import synthetic  # noqa: E402,F401  (registers SyntheticMotion)
from paddlevideo.tasks.train import train_model  # noqa: E402
from paddlevideo.utils.config import get_config  # noqa: E402

config, out = sys.argv[1], sys.argv[2]
result = train_model(get_config(config), validate=True)
state = {k: np.asarray(v) for k, v in result["model"].state_dict().items()}
np.savez(os.path.join(out, f"rank{dist.get_rank()}.npz"), **state)
