"""Strict test configuration shared by the whole suite.

Eight simulated CPU devices are requested before JAX is imported so that sharding tests can run
on any machine; tests that need a single device use ``jax.devices()[:1]`` explicitly.
"""
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# In-process CLI tests must not write to ~/.cache or change JAX's global cache settings;
# tests/test_cli_cache.py turns the cache on in a subprocess.
os.environ.setdefault("FEASJAX_NO_COMPILE_CACHE", "1")

import jax  # noqa: E402

jax.config.update("jax_numpy_rank_promotion", "raise")
jax.config.update("jax_threefry_partitionable", True)
