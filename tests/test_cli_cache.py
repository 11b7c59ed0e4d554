"""The CLI's persistent compilation cache: a second identical run compiles nothing new."""
import os
import subprocess
import sys

import pytest


def _demo(cache_dir, *extra):
    env = {k: v for k, v in os.environ.items() if k != "FEASJAX_NO_COMPILE_CACHE"}
    env.update(FEASJAX_CACHE_DIR=str(cache_dir), XLA_FLAGS="", JAX_PLATFORMS="cpu")
    cmd = [sys.executable, "-m", "feasjax.cli", "demo", "--epochs", "1", "--methods", "fl",
           "--no-progress", *extra]
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=600)


def _entries(cache_dir):
    return sorted(p.name for p in cache_dir.rglob("*") if p.is_file())


@pytest.mark.slow
def test_second_demo_run_hits_the_cache_and_the_flag_turns_it_off(tmp_path):
    cache = tmp_path / "cache"
    _demo(cache)
    first = _entries(cache)
    assert first, "the first run should fill the cache"
    _demo(cache)
    assert _entries(cache) == first  # every program came from the cache


def test_no_compile_cache_flag_leaves_jax_config_alone(tmp_path, monkeypatch):
    # In process, with the command's training replaced: what the flag decides is whether main
    # points JAX at the cache directory (the subprocess test above shows that this fills it).
    import jax
    from feasjax.cli import app, demo

    calls = []
    monkeypatch.delenv("FEASJAX_NO_COMPILE_CACHE", raising=False)
    monkeypatch.setenv("FEASJAX_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(demo, "demo", lambda args: calls.append(args.command))
    monkeypatch.setattr(jax.config, "update", lambda name, value: calls.append((name, value)))
    assert app.main(["demo", "--epochs", "1", "--no-compile-cache"]) == 0
    assert calls == ["demo"]  # ran, and never touched the cache settings
    monkeypatch.delenv("FEASJAX_NO_COMPILE_CACHE", raising=False)  # main set it for the flag
    assert app.main(["demo", "--epochs", "1"]) == 0
    assert ("jax_compilation_cache_dir", str(tmp_path / "cache")) in calls
