"""Suite-wide test settings.

On small shared CPUs, torch's OpenMP threads and NumPy/scikit-learn's BLAS threads spin
against each other and against other processes, slowing small-tensor tests ~100x; run
the suite single-threaded. threadpoolctl only limits libraries already loaded, hence
the imports first. W&B never needs an account or the network in tests.
"""

import os

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")

import sklearn.linear_model  # noqa: E402, F401
import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

torch.set_num_threads(1)
_LIMIT = threadpool_limits(limits=1)
