"""What the OSU-style suites (p2p, coll, backend) share: the environment Open MPI needs and one run
of a benchmark program that prints a JSON row. (A leading underscore keeps the harness from taking
this module for a suite.)"""
import json
import os
import subprocess


def mpi_env():
    """This environment, plus what Open MPI needs to run as root."""
    env = dict(os.environ)
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    return env


def run_one(cmd, env):
    """Runs `cmd` and returns the first JSON object it prints on stdout (RuntimeError if none)."""
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    for line in out.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError("no result from %s\nstdout: %s\nstderr: %s" % (" ".join(cmd), out.stdout, out.stderr[-2000:]))
