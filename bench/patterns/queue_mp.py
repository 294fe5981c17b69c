#!/usr/bin/env python3
"""Python multiprocessing baselines for bench/suites/patterns_queue.py (same work as
queue_cohort.cpp / pipe_cohort.cpp):

  python3 queue_mp.py throughput ITEMS        1 producer -> 1 consumer through a multiprocessing.Queue
  python3 queue_mp.py throughput_2x2 ITEMS    2 producers -> 2 consumers
  python3 queue_mp.py pipe_latency ITERATIONS ping-pong over multiprocessing.Pipe (one-way us)

Prints one JSON line like the Cohort programs.
"""
import json
import multiprocessing as mp
import sys
import time


def producer(q, n, start):
    start.wait()
    for i in range(n):
        q.put(i)


def consumer(q, done):
    got = 0
    while True:
        v = q.get()
        if v < 0:
            break
        got += 1
    done.put(got)


def queue_bench(name, items, producers):
    consumers = producers
    q = mp.Queue(1024)
    done = mp.Queue()
    start = mp.Event()
    per = items // producers
    ps = [mp.Process(target=producer, args=(q, per, start)) for _ in range(producers)]
    cs = [mp.Process(target=consumer, args=(q, done)) for _ in range(consumers)]
    for p in ps + cs:
        p.start()
    time.sleep(0.2)  # every process is up
    t0 = time.perf_counter()
    start.set()
    for p in ps:
        p.join()
    for _ in cs:
        q.put(-1)
    got = sum(done.get() for _ in cs)
    elapsed = time.perf_counter() - t0
    for c in cs:
        c.join()
    assert got == per * producers, (got, per * producers)
    return {"bench": "queue_" + name, "np": producers + consumers, "value": got / elapsed, "unit": "msg/s"}


def echo(conn, n):
    for _ in range(n):
        conn.send(conn.recv())


def pipe_bench(iterations):
    a, b = mp.Pipe()
    warm = iterations // 10 + 1
    p = mp.Process(target=echo, args=(b, warm + iterations))
    p.start()
    for i in range(warm):
        a.send(i)
        a.recv()
    t0 = time.perf_counter()
    for i in range(iterations):
        a.send(i)
        a.recv()
    elapsed = time.perf_counter() - t0
    p.join()
    return {"bench": "pipe_latency", "np": 2, "value": elapsed / (2 * iterations) * 1e6, "unit": "us"}


def main():
    bench = sys.argv[1]
    n = int(sys.argv[2])
    if bench == "throughput":
        r = queue_bench("throughput", n, 1)
    elif bench == "throughput_2x2":
        r = queue_bench("throughput_2x2", n, 2)
    elif bench == "pipe_latency":
        r = pipe_bench(n)
    else:
        raise SystemExit("unknown bench " + bench)
    print(json.dumps(r), flush=True)


if __name__ == "__main__":
    main()
