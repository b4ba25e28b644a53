"""Suite-wide test settings.

On small shared CPUs, torch's OpenMP threads and NumPy/scikit-learn's BLAS threads spin
against each other and against other processes, slowing small-tensor tests ~100x; run
the suite single-threaded. threadpoolctl only limits libraries already loaded, hence
the imports first. W&B never needs an account or the network in tests.
"""

import os

os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("WANDB_SILENT", "true")

import pytest  # noqa: E402
import sklearn.linear_model  # noqa: E402, F401
import torch  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

torch.set_num_threads(1)
_LIMIT = threadpool_limits(limits=1)

# Tiny zoos trained for a few steps do not learn their tasks; tests of the comparison
# and tracking mechanics count every such member as converged (retry=EVERY_MEMBER_COUNTS)
# so that compare and the tracker keep them.
from interpeq.zoo.retry import RetrySpec  # noqa: E402

EVERY_MEMBER_COUNTS = RetrySpec(thresholds={"acc": 0.0, "iia": 0.0, "strict_acc": 0.0})


@pytest.fixture(scope="module")
def local_ray(request):
    """A local Ray for one test module, with the module's ``RAY_RESOURCES`` (default 2 CPUs),
    e.g. ``{"num_cpus": 4, "num_gpus": 4}`` for a simulated GPU cluster (CUDA is never touched)."""
    pytest.importorskip("ray", reason="Ray is not installed: pip install 'interpeq[ray]'")
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(
        **getattr(request.module, "RAY_RESOURCES", {"num_cpus": 2}),
        include_dashboard=False,
        log_to_driver=False,
        object_store_memory=200 * 1024**2,
        logging_level="WARNING",
    )
    yield ray
    ray.shutdown()


def tiny_zoo(root, name: str, tasks: list[str], seeds=(0, 1)):
    """A zoo of tiny members trained 10 steps, every member counted as converged: the
    comparison tests' common fixture (mechanics, not learning)."""
    from interpeq.zoo import ZooSpec, run_zoo

    spec = ZooSpec.from_dict(
        {
            "name": name,
            "tasks": tasks,
            "seeds": list(seeds),
            "settings": ["D"],
            "model": {"n_layers": 2, "d_model": 16, "n_heads": 2, "d_head": 8, "d_mlp": 32},
            "train": {"max_steps": 10, "batch_size": 32, "val_every": 10, "val_size": 64},
        }
    )
    return run_zoo(spec, root, progress=False, retry=EVERY_MEMBER_COUNTS)


def transformer_lens_or_skip():
    """TransformerLens, or a skip; under ``make test-tl`` (INTERPEQ_REQUIRE_TL=1) its
    absence is a failure, so the interop tests cannot pass there by being skipped."""
    if os.environ.get("INTERPEQ_REQUIRE_TL"):
        import transformer_lens

        return transformer_lens
    return pytest.importorskip("transformer_lens")
