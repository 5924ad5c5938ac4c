#!/usr/bin/env python3
"""Scale benchmark: N DynamoDB tables + N security groups against the local emulator.

Prints wall time and peak memory (max RSS) of `validate`, `apply`, a no-op `plan` and
`destroy`, the AWS calls plinth made (counted by plinth itself, `--stats`) per resource,
and, as a floor to compare apply and destroy with, how long the emulator takes to answer
the minimal calls when a Python client sends them with the same parallelism.

    python3 benches/scale.py               # N = 200, the release binary (built if missing)
    python3 benches/scale.py --n 50 --bin target/debug/plinth
    python3 benches/scale.py --faults      # also through injected faults, next to the above
    python3 benches/scale.py --faults throttle=0.2,error=0.05,lost=0.05 --seed 3
    python3 benches/scale.py --roster 100 --max-environments 4,8,16   # a class, state on S3

This is a benchmark, not a test: it asserts nothing and prints figures.
"""

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# The rates the tests use: 8% throttling, 4% 5xx, 3% answers lost after the work was done.
DEFAULT_FAULTS = "throttle=0.08,error=0.04,lost=0.03,latency=0-30ms"


def start_emulator(latency_ms: int, faults: str = "", seed: int = 0):
    port = free_port()
    extra = ["--faults", faults, "--seed", str(seed)] if faults else []
    proc = subprocess.Popen(
        [sys.executable, os.path.join(ROOT, "tests/emulator/moto_server.py"), "--port", str(port),
         "--parent-pid", str(os.getpid()), "--latency-ms", str(latency_ms), *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            endpoint = f"http://127.0.0.1:{port}"
            warm_up(endpoint)
            return proc, endpoint
        except OSError:
            time.sleep(0.05)
    raise SystemExit("the emulator did not start")


def clients(endpoint: str):
    import boto3  # moto depends on it, so it is there wherever the emulator is
    kw = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench",
              aws_secret_access_key="bench")
    return boto3.client("dynamodb", **kw), boto3.client("ec2", **kw)


def warm_up(endpoint: str) -> None:
    """moto loads each service's backend on its first request (about a second each);
    measure plinth against a warm emulator, as the floor is. (Retried: the emulator may be
    injecting faults.)"""
    ddb, ec2 = clients(endpoint)
    for call in (ddb.list_tables, ec2.describe_security_groups):
        for _ in range(20):
            try:
                call()
                break
            except Exception:  # noqa: BLE001 - an injected fault; try again
                time.sleep(0.05)


def stack(n: int) -> str:
    lines = ["stack: bench", "region: us-east-1", "resources:"]
    for i in range(n):
        lines += [f"  t{i:04}:", "    type: dynamodb.table", f"    name: bench-t{i:04}",
                  "    partition_key: { name: Id, type: S }"]
        lines += [f"  sg{i:04}:", "    type: ec2.security_group", f"    name: bench-sg{i:04}",
                  "    ingress:", f"      - {{ protocol: tcp, ports: {1024 + i}, cidr: 10.0.0.0/8 }}"]
    return "\n".join(lines) + "\n"


def run(binary, args, env, cwd):
    """Runs one plinth command; returns (seconds, peak RSS in MiB, stats or None)."""
    rss_file = os.path.join(cwd, "rss.txt")
    timer = ["/usr/bin/time", "-f", "%M", "-o", rss_file] if os.path.exists("/usr/bin/time") else []
    start = time.perf_counter()
    proc = subprocess.run([*timer, binary, *args], env=env, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise SystemExit(f"plinth {' '.join(args)} failed with exit code {proc.returncode}")
    try:
        with open(rss_file) as f:
            peak_kib = int(f.read().split()[-1])
    except (OSError, ValueError, IndexError):
        peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss  # largest so far
    stats = None
    for line in proc.stderr.splitlines():
        if line.startswith("plinth-stats: "):
            stats = json.loads(line[len("plinth-stats: "):])
    return elapsed, peak_kib / 1024, stats


# The Python client's threads for the floor, unless --parallelism is given.
FLOOR_THREADS = 16


def floor(endpoint: str, n: int, parallelism: int) -> tuple:
    """The emulator's own time for the minimal create and delete calls."""
    ddb, ec2 = clients(endpoint)

    def create(i):
        ddb.create_table(TableName=f"floor-t{i}", BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": "Id", "AttributeType": "S"}],
                         KeySchema=[{"AttributeName": "Id", "KeyType": "HASH"}])
        gid = ec2.create_security_group(GroupName=f"floor-sg{i}", Description="x")["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 1024 + i, "ToPort": 1024 + i, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}])
        return gid

    start = time.perf_counter()
    with ThreadPoolExecutor(parallelism) as pool:
        groups = list(pool.map(create, range(n)))
    created = time.perf_counter() - start

    def delete(args):
        i, gid = args
        ddb.delete_table(TableName=f"floor-t{i}")
        ec2.delete_security_group(GroupId=gid)

    start = time.perf_counter()
    with ThreadPoolExecutor(parallelism) as pool:
        list(pool.map(delete, enumerate(groups)))
    return created, time.perf_counter() - start


def measure(binary, args, faults: str = "", floor_too: bool = False):
    """validate, apply, a no-op plan and destroy of the stack against a fresh emulator; with
    the emulator's floor when asked. A failed command (a plan that is not clean, say) stops
    the benchmark: faults may cost time, never correctness."""
    emulator, endpoint = start_emulator(args.latency_ms, faults, args.seed)
    try:
        with tempfile.TemporaryDirectory() as work:
            with open(os.path.join(work, "plinth.yaml"), "w") as f:
                f.write(stack(args.n))
            env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="bench",
                       AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1", NO_COLOR="1")
            env.pop("PLINTH_MAX_ATTEMPTS", None)
            par = ["--parallelism", str(args.parallelism)] if args.parallelism else []
            rows = [("validate", run(binary, ["validate"], env, work))]
            rows.append(("apply", run(binary, ["apply", "--yes", "--stats", *par], env, work)))
            rows.append(("plan (no-op)", run(binary, ["plan", "--detailed-exitcode", "--stats", *par], env, work)))
            rows.append(("destroy", run(binary, ["destroy", "--yes", "--stats", *par], env, work)))
            floors = floor(endpoint, args.n, args.parallelism or FLOOR_THREADS) if floor_too else None
    finally:
        emulator.kill()
    return rows, floors


def roster_row(binary, args, verb_args, env, work):
    return run(binary, [*verb_args, "lab.yaml", "--roster", "students.txt", "--stats",
                        "--max-environments", str(args.max_env)], env, work)


def measure_roster(binary, args, max_env: int):
    """A class: `--roster N` students x the week-2 lab (6 resources and 30 seed items each),
    state on the emulator's S3: apply, a no-op plan and destroy of the whole roster."""
    emulator, endpoint = start_emulator(args.latency_ms)
    try:
        with tempfile.TemporaryDirectory() as work:
            with open(os.path.join(ROOT, "stacks/week2-data-lab.yaml")) as f:
                lab = f.read()
            os.makedirs(os.path.join(work, "data"))
            with open(os.path.join(work, "lab.yaml"), "w") as f:
                f.write(lab)
            with open(os.path.join(ROOT, "stacks/data/users.yaml")) as f, \
                    open(os.path.join(work, "data/users.yaml"), "w") as out:
                out.write(f.read())
            with open(os.path.join(work, "students.txt"), "w") as f:
                f.write("".join(f"s{i:03}\n" for i in range(args.roster)))
            import boto3
            boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="bench",
                         aws_secret_access_key="bench").create_bucket(Bucket="bench-state")
            env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="bench",
                       AWS_SECRET_ACCESS_KEY="bench", AWS_REGION="us-east-1", NO_COLOR="1",
                       PLINTH_STATE="s3://bench-state/class")
            env.pop("PLINTH_MAX_ATTEMPTS", None)
            args.max_env = max_env
            rows = [("apply", roster_row(binary, args, ["apply", "--yes"], env, work))]
            rows.append(("plan (no-op)", roster_row(binary, args, ["plan", "--detailed-exitcode"], env, work)))
            rows.append(("destroy", roster_row(binary, args, ["destroy", "--yes"], env, work)))
    finally:
        emulator.kill()
    return rows


def print_roster(binary, args):
    resources = 6 * args.roster
    print(f"\nplinth class benchmark: {args.roster} students x week-2 lab = {resources} resources, "
          f"{30 * args.roster} seed items, state on S3, emulator latency {args.latency_ms} ms\n")
    print(f"{'command':<14}{'envs':>5}{'wall':>10}{'peak RSS':>12}{'AWS calls':>11}{'per resource':>14}"
          f"{'S3 state':>10}{'per env':>9}")
    by_ops = []
    for max_env in [int(m) for m in args.max_environments.split(",")]:
        for name, (secs, rss, stats) in measure_roster(binary, args, max_env):
            calls = stats["aws_calls"] if stats else 0
            s3 = sum(v for k, v in stats["by_operation"].items() if k.startswith("S3.")) if stats else 0
            print(f"{name:<14}{max_env:>5}{secs:>9.2f}s{rss:>9.1f} MiB{calls:>11}{calls / resources:>14.2f}"
                  f"{s3:>10}{s3 / args.roster:>9.1f}")
            if stats:
                state_ops = {k: v for k, v in stats["by_operation"].items() if k.startswith("S3.")}
                by_ops.append((f"{name}, {max_env} at a time", state_ops))
    print("\nS3 state calls by operation:")
    for name, ops in by_ops:
        print(f"  {name}: " + ", ".join(f"{k} {v}" for k, v in sorted(ops.items())))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="tables and security groups each (default 200)")
    parser.add_argument("--bin", help="the plinth binary (default: target/release/plinth, built if missing)")
    parser.add_argument("--parallelism", type=int, default=0,
                        help="plinth's --parallelism (default: plinth's own default)")
    parser.add_argument("--latency-ms", type=int, default=0, help="delay every emulator request")
    parser.add_argument("--faults", nargs="?", const=DEFAULT_FAULTS, default="",
                        help=f"also measure through injected faults (default rates: {DEFAULT_FAULTS})")
    parser.add_argument("--seed", type=int, default=1, help="which faults, with --faults")
    parser.add_argument("--roster", type=int, default=0, metavar="STUDENTS",
                        help="instead: a roster of STUDENTS x the week-2 lab, state on S3")
    parser.add_argument("--max-environments", default="4,8,16",
                        help="with --roster: the --max-environments values to compare (default 4,8,16)")
    args = parser.parse_args()

    binary = os.path.abspath(args.bin) if args.bin else os.path.join(os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "release/plinth")
    if not args.bin and not os.path.exists(binary):
        subprocess.run(["cargo", "build", "--release", "--locked"], cwd=ROOT, check=True)
    if args.roster:
        print_roster(binary, args)
        return
    resources = 2 * args.n
    rows, (floor_create, floor_delete) = measure(binary, args, floor_too=True)
    faulty = measure(binary, args, faults=args.faults)[0] if args.faults else None

    print(f"\nplinth scale benchmark: {args.n} tables + {args.n} security groups = {resources} resources, "
          f"parallelism {args.parallelism or 'default'}, emulator latency {args.latency_ms} ms\n")
    print(f"{'command':<14}{'wall':>10}{'peak RSS':>12}{'AWS calls':>11}{'per resource':>14}")
    for name, (secs, rss, stats) in rows:
        calls = stats["aws_calls"] if stats else 0
        print(f"{name:<14}{secs:>9.2f}s{rss:>9.1f} MiB{calls:>11}{calls / resources:>14.2f}")
    print(f"\nemulator floor (the minimal calls from a {args.parallelism or FLOOR_THREADS}-thread Python client): "
          f"create {floor_create:.2f}s, delete {floor_delete:.2f}s")
    for name, (_, _, stats) in rows:
        if stats:
            ops = ", ".join(f"{k} {v}" for k, v in sorted(stats["by_operation"].items()))
            print(f"  {name}: {ops}")
    if faulty:
        print(f"\nthrough faults ({args.faults}, seed {args.seed}), next to the fault-free run:\n")
        print(f"{'command':<14}{'clean':>9}{'faults':>9}{'calls':>7}{'attempts':>10}{'throttled':>11}{'paced':>8}")
        for (name, (secs, _, _)), (_, (fsecs, _, fstats)) in zip(rows, faulty):
            if not fstats:
                continue
            print(f"{name:<14}{secs:>8.2f}s{fsecs:>8.2f}s{fstats['aws_calls']:>7}"
                  f"{fstats['aws_attempts']:>10}{fstats['throttled']:>11}{fstats['paced_seconds']:>7.1f}s")
        print("\n(apply converged in one run, the plan after it was clean and destroy left nothing, or the"
              " benchmark would have stopped)")


if __name__ == "__main__":
    main()
