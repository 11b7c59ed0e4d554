"""Strict test configuration shared by the whole suite.

Eight simulated CPU devices are requested before JAX is imported so that sharding tests can run
on any machine; tests that need a single device use ``jax.devices()[:1]`` explicitly.
"""
import os
import shutil
import tempfile

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# In-process CLI tests must not write to ~/.cache or change JAX's global cache settings;
# tests/test_cli_cache.py turns the cache on in a subprocess.
os.environ.setdefault("FEASJAX_NO_COMPILE_CACHE", "1")

import jax  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_threefry_partitionable", True)
# One persistent compilation cache for the session, shared by the xdist workers (the controller
# makes the directory before it starts them): many tests compile the same programs through new
# jit objects (the digits demo's epoch, the tiny solvers), and a cached executable is the same
# program, so results are unchanged. Only programs that take a while to compile are stored.
_OWN_CACHE = "FEASJAX_TEST_COMPILATION_CACHE" not in os.environ  # the controller's, not a worker's
if _OWN_CACHE:
    os.environ["FEASJAX_TEST_COMPILATION_CACHE"] = tempfile.mkdtemp(prefix="feasjax-test-jax-cache-")
_CACHE = os.environ["FEASJAX_TEST_COMPILATION_CACHE"]
jax.config.update("jax_compilation_cache_dir", _CACHE)
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)


def pytest_sessionfinish(session, exitstatus):
    del exitstatus
    if _OWN_CACHE and not hasattr(session.config, "workerinput"):  # the controller, last
        shutil.rmtree(_CACHE, ignore_errors=True)
