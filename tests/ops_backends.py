"""Run the public ops API on one backend at a time (shared by the tests of tavaal.ops)."""
import contextlib
import os

import pytest

import tavaal.ops as ops

BACKENDS = ["cpp", "reference"]


@contextlib.contextmanager
def use_backend(name):
    """Run the public API on one backend (TAVAAL_FORCE_REFERENCE is read at every call).

    "cpp" fails the test when the extension did not load (unless built with TAVAAL_NO_EXT=1,
    then it skips): a silently slow fallback must not pass for the C++ kernels."""
    old = os.environ.get("TAVAAL_FORCE_REFERENCE")
    if name == "reference":
        os.environ["TAVAAL_FORCE_REFERENCE"] = "1"
    else:
        os.environ.pop("TAVAAL_FORCE_REFERENCE", None)
        if ops.backend() == "reference":
            if os.environ.get("TAVAAL_NO_EXT"):
                pytest.skip("built with TAVAAL_NO_EXT=1")
            pytest.fail(f"the C++ extension did not load: {ops.extension_error()}")
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("TAVAAL_FORCE_REFERENCE", None)
        else:
            os.environ["TAVAAL_FORCE_REFERENCE"] = old
