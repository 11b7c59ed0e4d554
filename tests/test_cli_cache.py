"""The CLI's persistent compilation cache: a second identical run compiles nothing new."""
import os
import subprocess
import sys


def _demo(cache_dir, *extra):
    env = {k: v for k, v in os.environ.items() if k != "FEASJAX_NO_COMPILE_CACHE"}
    env.update(FEASJAX_CACHE_DIR=str(cache_dir), XLA_FLAGS="", JAX_PLATFORMS="cpu")
    cmd = [sys.executable, "-m", "feasjax.cli", "demo", "--epochs", "1", "--methods", "fl",
           "--no-progress", *extra]
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=600)


def _entries(cache_dir):
    return sorted(p.name for p in cache_dir.rglob("*") if p.is_file())


def test_second_demo_run_hits_the_cache_and_the_flag_turns_it_off(tmp_path):
    cache = tmp_path / "cache"
    _demo(cache)
    first = _entries(cache)
    assert first, "the first run should fill the cache"
    _demo(cache)
    assert _entries(cache) == first  # every program came from the cache
    off = tmp_path / "off"
    _demo(off, "--no-compile-cache")
    assert not off.exists() or not _entries(off)
