"""`keys list` with 10,000 keys in Redis (target ≤ 1 s, whole process) and store size per key.

Side by side in one run: the whole `mcpadmin keys list` process (table and json), the store's
batched read in-process, and a naive per-key round-trip read of the same records, so the
pipelining ratio is measured, not assumed. Records carry real argon2id PHC strings (default
parameters) so MEMORY USAGE is representative.

    python benchmarks/bench_redis_list.py [--keys 10000] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
from _common import machine, summary, time_process  # noqa: E402

from finops_mcp_admin.durations import utcnow  # noqa: E402
from finops_mcp_admin.keys import ApiKey, KeyHasher, generate_token  # noqa: E402
from finops_mcp_admin.store.redis import RedisStore  # noqa: E402
from tests.redis_server import RedisServer, server_binary  # noqa: E402


def populate(store: RedisStore, count: int) -> None:
    hasher = KeyHasher()  # default (OWASP) parameters: representative PHC length
    phc = hasher.hash(generate_token()[1])
    now = utcnow()
    batch = 1000
    for start in range(0, count, batch):
        def run(tx, start=start):
            for i in range(start, min(start + batch, count)):
                key_id, _ = generate_token()
                tx.put(ApiKey(id=key_id, name=f"client-{i:05d}", created_at=now, created_by="bench",
                              scopes=("tools:read",), owner=f"team-{i % 20}"), phc)
                tx.set_current(f"client-{i:05d}", key_id)
        store.transaction(run)


def naive_read(store: RedisStore) -> int:
    """One round trip per key: what pipelining avoids."""
    ids = store.client.smembers(store.k("ids"))
    client = store.client
    return sum(1 for key_id in ids
               if client.get(store.k("rec", key_id)) and client.hget(store.k("used"), key_id) is None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp())
    server = RedisServer(server_binary(), workdir).start()
    try:
        store = RedisStore(server.url, namespace="bench")
        t0 = time.perf_counter()
        populate(store, args.keys)
        print(f"machine: {machine()}\nserver: {server_binary()}\n"
              f"populated {args.keys} keys in {time.perf_counter() - t0:.1f} s\n")

        env = {**os.environ, "MCPADMIN_STORE": server.url, "MCPADMIN_NAMESPACE": "bench"}
        exe = [sys.executable, "-m", "finops_mcp_admin"]
        rows = {}
        for label, cmd in {"mcpadmin keys list (table)": [*exe, "keys", "list"],
                           "mcpadmin keys list -o json": [*exe, "keys", "list", "-o", "json"],
                           "mcpadmin keys list -q (ids)": [*exe, "keys", "list", "-q"]}.items():
            times = time_process(cmd, args.runs, env=env)
            rows[label] = statistics.median(times)
            print(f"{label:34s} {summary(times)}")
        inproc, naive = [], []
        for _ in range(args.runs):
            t = time.perf_counter()
            assert len(store.list_keys()) == args.keys
            inproc.append(time.perf_counter() - t)
            t = time.perf_counter()
            assert naive_read(store) == args.keys
            naive.append(time.perf_counter() - t)
        print(f"{'store.list_keys() in-process':34s} {summary(inproc)}")
        print(f"{'naive per-key GET+HGET in-process':34s} {summary(naive)}")
        print(f"\npipelined batch read is {statistics.median(naive) / statistics.median(inproc):.1f}x "
              "faster than per-key round trips")
        worst = max(rows.values())
        print(f"slowest whole-process list: {worst * 1000:.0f} ms "
              f"({'OK' if worst <= 1.0 else 'OVER'} target 1000 ms)")

        client = store.client
        sample = list(client.smembers(store.k("ids")))[:200]
        per_record = statistics.mean(client.memory_usage(store.k("rec", i), samples=0)
                                     + client.memory_usage(store.k("hash", i), samples=0) for i in sample)
        per_name = statistics.mean(client.memory_usage(store.k("name", f"client-{n:05d}"), samples=0)
                                   for n in range(200))
        ids_set = client.memory_usage(store.k("ids"), samples=0) / args.keys
        print(f"\nMEMORY USAGE per key: record + hash strings {per_record:.0f} B "
              f"+ name pointer {per_name:.0f} B + share of id index {ids_set:.0f} B "
              f"= {per_record + per_name + ids_set:.0f} B")
        store.close()
    finally:
        server.stop()


if __name__ == "__main__":
    main()
