"""Python multiprocessing twins of pool_bench.cpp (same work, same output lines).
  python3 pool_py.py map N CHUNK REPEATS WORKERS   (CHUNK 0: Pool.map's default chunks)
  python3 pool_py.py cpu REPEATS WORKERS
  python3 pool_py.py spawn N REPEATS
"""
import multiprocessing as mp
import statistics
import sys
import time


def square(x):
    return x * x


def sum_of_squares(n):
    return sum(i * i for i in range(n))


def noop():
    pass


def bench_map(n, chunk, repeats, workers):
    xs = list(range(n))
    rates = []
    with mp.Pool(workers) as pool:
        for r in range(repeats + 1):
            t0 = time.perf_counter()
            out = pool.map(square, xs, chunk) if chunk > 0 else pool.map(square, xs)
            s = time.perf_counter() - t0
            assert out[-1] == (n - 1) * (n - 1)
            if r > 0:
                rates.append(n / s)
    print(f"tasks_per_s={statistics.median(rates):.1f}")


def bench_cpu(repeats, workers):
    tasks = [2_000_000] * 8
    speedups = []
    with mp.Pool(workers) as pool:
        for _ in range(repeats):
            t0 = time.perf_counter()
            seq = [sum_of_squares(n) for n in tasks]
            t_seq = time.perf_counter() - t0
            t0 = time.perf_counter()
            par = pool.map(sum_of_squares, tasks)
            t_par = time.perf_counter() - t0
            assert par == seq
            speedups.append(t_seq / t_par)
    print(f"speedup={statistics.median(speedups):.3f}")


def bench_spawn(n, repeats):
    ms = []
    for r in range(repeats + 1):
        t0 = time.perf_counter()
        procs = [mp.Process(target=noop) for _ in range(n)]
        for p in procs:
            p.start()
        for p in procs:
            p.join()
            assert p.exitcode == 0
        if r > 0:
            ms.append((time.perf_counter() - t0) * 1e3)
    print(f"ms={statistics.median(ms):.3f}")


if __name__ == "__main__":
    mp.set_start_method("fork")
    a = sys.argv[1:]
    if a[0] == "map":
        bench_map(int(a[1]), int(a[2]), int(a[3]), int(a[4]))
    elif a[0] == "cpu":
        bench_cpu(int(a[1]), int(a[2]))
    elif a[0] == "spawn":
        bench_spawn(int(a[1]), int(a[2]))
