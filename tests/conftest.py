import os
import shutil

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch loads OpenMP; see tavaal/__init__.py

import pytest  # noqa: E402
import torch  # noqa: E402


def pytest_collection_modifyitems(config, items):
    has_gpu = torch.cuda.is_available()
    has_nvcc = shutil.which("nvcc") is not None
    try:
        import ray  # noqa: F401

        has_ray = True
    except ImportError:
        has_ray = False
    for item in items:
        if "gpu" in item.keywords and not has_gpu:
            item.add_marker(pytest.mark.skip(reason="needs an NVIDIA GPU with CUDA torch"))
        if "nvcc" in item.keywords and not has_nvcc:
            item.add_marker(pytest.mark.skip(reason="nvcc not found on PATH"))
        if "ray" in item.keywords and not has_ray:
            item.add_marker(pytest.mark.skip(reason="ray is not installed (pip install tavaal[ray])"))


@pytest.fixture(autouse=True)
def _seed_everything():
    torch.manual_seed(0)
    yield


@pytest.fixture(scope="module")
def ray_cluster():
    """A local Ray cluster (2 CPUs) for one test module; reuses a running one."""
    ray = pytest.importorskip("ray")
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    if started:
        ray.shutdown()
