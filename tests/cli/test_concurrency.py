"""Concurrency: parallel processes leave a consistent store."""

from __future__ import annotations

import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from finops_mcp_admin.config import load_settings
from finops_mcp_admin.durations import utcnow

N = 20


def _parallel(commands: list[list[str]]) -> list[subprocess.CompletedProcess]:
    procs = [subprocess.Popen([sys.executable, "-m", "finops_mcp_admin", *args],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              stdin=subprocess.DEVNULL) for args in commands]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=180)
        results.append(subprocess.CompletedProcess(p.args, p.returncode, out, err))
    return results


def _works(key: str) -> bool:
    return subprocess.run([sys.executable, "-m", "finops_mcp_admin", "keys", "verify", "-q"],
                          input=key, capture_output=True, text=True).returncode == 0


@pytest.mark.slow
def test_parallel_rotations_form_one_lineage(cli, backend):
    first = cli("keys", "create", "shared", "-q")
    assert first.code == 0
    results = _parallel([["keys", "rotate", "shared", "--grace", "1h", "-q"]] * N)
    printed = [r.stdout.strip() for r in results if r.returncode == 0]
    for r in results:
        assert r.returncode == 0 or r.stderr.count("\n") == 1, r.stderr
    assert printed, "at least one rotation must succeed"
    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(_works, [*printed, first.stdout.strip()]))

    now = utcnow()
    with load_settings().open_store() as store:
        keys = [k for k in store.list_keys() if k.name == "shared"]
        head_id = store.current_id("shared")
    by_id = {k.id: k for k in keys}
    assert len(keys) == 1 + len(printed)  # nothing lost, nothing duplicated
    heads = [k for k in keys if k.rotated_to is None]
    assert [h.id for h in heads] == [head_id]  # exactly one current key
    # Walk the chain from the head: it must visit every key once (no fork, no orphan).
    seen, cursor = [], by_id[head_id]
    while cursor is not None:
        seen.append(cursor.id)
        cursor = by_id.get(cursor.rotated_from) if cursor.rotated_from else None
    assert sorted(seen) == sorted(by_id)
    assert all(by_id[k.rotated_to].rotated_from == k.id for k in keys if k.rotated_to)
    assert all(k.is_valid(now) for k in keys)


@pytest.mark.slow
def test_parallel_creates_of_distinct_names_all_land(cli, backend):
    results = _parallel([["keys", "create", f"svc-{i}", "-q"] for i in range(N)])
    assert [r.returncode for r in results] == [0] * N, [r.stderr for r in results]
    printed = [r.stdout.strip() for r in results]
    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(_works, printed))
    with load_settings().open_store() as store:
        names = sorted(k.name for k in store.list_keys())
        assert names == sorted(f"svc-{i}" for i in range(N))
        assert len({store.current_id(f"svc-{i}") for i in range(N)}) == N


@pytest.mark.slow
def test_parallel_creates_of_one_name_admit_exactly_one(cli, backend):
    results = _parallel([["keys", "create", "contended", "-q"]] * N)
    winners = [r for r in results if r.returncode == 0]
    assert len(winners) == 1
    assert all(r.returncode == 4 for r in results if r.returncode != 0)
    assert _works(winners[0].stdout.strip())
