#!/usr/bin/env python3
"""Benchmarks: keelson against the tools a platform team would otherwise run,
in the same run on the same machine. Prints tables with ratios.

usage: scripts/bench.py [--apps 1000[,3000...]] [--envs 3] [--runs 5] [--skip-kube] [--skip-checks]

  validate  keelson validate        vs check-jsonschema (PyPI) on the same files,
            interleaved, min and median of >= 5 runs each
  render    keelson render          (no competitor: the merge is keelson's own)
  apply     keelson reconcile       vs kubectl apply --server-side -f (same objects, 1 run each)
  no-op     keelson reconcile --dry-run vs kubectl diff --server-side -f,
            interleaved, min and median of >= 5 runs each, keelson's peak RSS

`--apps 1000,3000` runs every size in turn and ends with keelson's no-op peak
RSS per object count.

Needs release builds (`cargo build --release --bin keelson -p keelson` and
`cargo build --release -p kube-apiserver`); it builds them when missing.
check-jsonschema is installed with pip when missing; kubectl must be on PATH.
"""
import argparse, os, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
KEELSON = os.path.join(ROOT, "target/release/keelson")
APISERVER = os.path.join(ROOT, "target/release/kube-apiserver")


def run_rss(cmd, **kw):
    """Run once, measuring the child's own peak RSS via wait4."""
    start = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)
    err = p.stderr.read().decode(errors="replace")  # before waiting: a full pipe would block the child
    _, status, usage = os.wait4(p.pid, 0)
    elapsed = time.perf_counter() - start
    code = os.waitstatus_to_exitcode(status)
    return elapsed, usage.ru_maxrss / 1024, code, err


def median_of(n, cmd, ok=(0,), **kw):
    times, rss = [], []
    for _ in range(n):
        t, r, code, err = run_rss(cmd, **kw)
        if code not in ok:
            sys.exit(f"{' '.join(cmd)} exited {code}:\n{err[-2000:]}")
        times.append(t)
        rss.append(r)
    return statistics.median(times), max(rss)


def table(title, rows):
    print(f"\n{title}")
    print(f"{'what':<44} {'keelson':>10} {'other':>10} {'ratio':>8} {'keelson RSS':>12}")
    for what, k, o, rss in rows:
        ratio = f"{o / k:.1f}x" if o else "-"
        other = f"{o * 1000:.0f} ms" if o else "-"
        print(f"{what:<44} {k * 1000:>7.0f} ms {other:>10} {ratio:>8} {rss:>9.0f} MiB")


def interleaved(runs, contenders, ok=(0,)):
    """Time each contender once per round, round after round, so that load
    from other processes falls on all of them alike. A contender is a list
    of commands timed together; each must exit with a code in `ok`.
    Returns {name: (times, peak RSS)}."""
    out = {name: ([], 0.0) for name in contenders}
    for _ in range(runs):
        for name, cmds in contenders.items():
            total, peak = 0.0, 0.0
            for cmd in cmds:
                t, r, code, err = run_rss(cmd)
                if code not in ok:
                    sys.exit(f"{' '.join(cmd)} exited {code}:\n{err[-2000:]}")
                total += t
                peak = max(peak, r)
            times, rss = out[name]
            times.append(total)
            out[name] = (times, max(rss, peak))
    return out


def bench_validate(repo, envs, runs):
    """keelson validate (schema, CEL rules and every rendered object checked
    as the API server would) against check-jsonschema doing the schema
    checks alone, interleaved."""
    env_files = [os.path.join(repo, "environments", e, "environment.yaml") for e in envs]
    pipe_files = [os.path.join(repo, "environments", e, "pipeline.yaml") for e in envs]
    pol_files = [os.path.join(repo, "policies", f) for f in sorted(os.listdir(os.path.join(repo, "policies")))]
    cj = [["check-jsonschema", "--schemafile", os.path.join(ROOT, "schema", f"{schema}.schema.json"), *files]
          for schema, files in (("environment", env_files), ("pipeline", pipe_files), ("policy", pol_files))]
    res = interleaved(max(5, runs), {"keelson": [[KEELSON, "validate", "--repo", repo]], "check-jsonschema": cj})
    (kt, krss), (ct, _) = res["keelson"], res["check-jsonschema"]
    print(f"\nvalidate, {len(kt)} interleaved runs each")
    print(f"{'':<18} {'min':>9} {'median':>9} {'peak RSS':>9}")
    print(f"{'keelson validate':<18} {min(kt) * 1000:>6.0f} ms {statistics.median(kt) * 1000:>6.0f} ms {krss:>5.0f} MiB")
    print(f"{'check-jsonschema':<18} {min(ct) * 1000:>6.0f} ms {statistics.median(ct) * 1000:>6.0f} ms")
    print(f"ratio: {min(ct) / min(kt):.1f}x (min), {statistics.median(ct) / statistics.median(kt):.1f}x (median)")


def ensure_builds():
    if not os.path.exists(KEELSON):
        subprocess.check_call(["cargo", "build", "--release", "-p", "keelson", "--bin", "keelson"], cwd=ROOT)
    if not os.path.exists(APISERVER):
        subprocess.check_call(["cargo", "build", "--release", "-p", "kube-apiserver"], cwd=ROOT)
    if not shutil.which("check-jsonschema"):
        subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "check-jsonschema"])


def start_apiserver(workdir, name):
    kc = os.path.join(workdir, f"{name}.kubeconfig")
    p = subprocess.Popen([APISERVER, "--listen", "127.0.0.1:0", "--kubeconfig", kc, "--no-request-log"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    p.stdout.readline()  # the URL, once listening
    return p, kc


def pairs(title, rows):
    """keelson against another tool, from interleaved() results: min and
    median of each, the ratio of medians, keelson's peak RSS."""
    print(f"\n{title}")
    print(f"{'what':<44} {'keelson min':>11} {'median':>9} {'other min':>10} {'median':>9} "
          f"{'ratio':>6} {'keelson RSS':>11}")
    for what, (kt, krss), (ot, _) in rows:
        km, kmed, om, omed = min(kt), statistics.median(kt), min(ot), statistics.median(ot)
        print(f"{what:<44} {km * 1000:>8.0f} ms {kmed * 1000:>6.0f} ms {om * 1000:>7.0f} ms "
              f"{omed * 1000:>6.0f} ms {omed / kmed:>5.1f}x {krss:>7.0f} MiB")


def bench_size(a, apps, work):
    """Every benchmark on a repository of `apps` apps per environment.
    Returns (objects, peak RSS of the no-op dry run) or None."""
    repo = os.path.join(work, f"repo-{apps}")
    subprocess.check_call([sys.executable, os.path.join(ROOT, "scripts/gen-large-repo.py"), repo,
                           "--apps", str(apps), "--envs", str(a.envs)])
    envs = sorted(os.listdir(os.path.join(repo, "environments")))
    print(f"\nrepository: {apps} apps x {len(envs)} environments, {os.cpu_count()} cores")

    # validate / render
    if not a.skip_checks:
        bench_validate(repo, envs, a.runs)
        kr, kr_rss = median_of(a.runs, [KEELSON, "render", "--repo", repo])
        table("render (median of runs)", [
            ("render all environments", kr, 0, kr_rss),
        ])
    if a.skip_kube:
        return None
    if not shutil.which("kubectl"):
        print("\nkubectl not found: skipping the Kubernetes benchmarks")
        return None

    # Rendered objects for kubectl, in keelson's apply order.
    rendered = os.path.join(work, f"rendered-{apps}.yaml")
    with open(rendered, "w") as f:
        subprocess.check_call([KEELSON, "render", "--repo", repo], stdout=f)
    objects = sum(1 for line in open(rendered) if line.startswith("kind: "))

    srv_k, kc_k = start_apiserver(work, f"keelson-{apps}")
    srv_c, kc_c = start_apiserver(work, f"kubectl-{apps}")
    try:
        with open(os.path.join(repo, "keelson.yaml"), "w") as f:
            f.write(f"apiVersion: keelson.dev/v1\nkind: Config\nclusters:\n  bench:\n    kubeconfig: {kc_k}\n    context: test\n")
        applied = interleaved(1, {
            "keelson": [[KEELSON, "reconcile", "--repo", repo, "--no-wait", "--parallelism", "16"]],
            "kubectl": [["kubectl", "--kubeconfig", kc_c, "apply", "--server-side", "--field-manager", "bench",
                         "-f", rendered]],
        }, ok=(0, 2))
        noop = interleaved(max(5, a.runs), {
            "keelson": [[KEELSON, "reconcile", "--repo", repo, "--dry-run"]],
            "kubectl": [["kubectl", "--kubeconfig", kc_c, "diff", "--server-side", "--field-manager", "bench",
                         "-f", rendered]],
        })
        pairs(f"Kubernetes ({objects} objects, test API server; no-op: {len(noop['keelson'][0])} "
              f"interleaved runs each)", [
            ("first apply vs kubectl apply --server-side", applied["keelson"], applied["kubectl"]),
            ("no-op dry-run vs kubectl diff --server-side", noop["keelson"], noop["kubectl"]),
        ])
    finally:
        for p in (srv_k, srv_c):
            p.terminate()
            p.wait()
    shutil.rmtree(repo, ignore_errors=True)
    return objects, noop["keelson"][1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--apps", default="1000", help="apps per environment; a comma-separated list runs each size")
    ap.add_argument("--envs", type=int, default=3)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--skip-kube", action="store_true")
    ap.add_argument("--skip-checks", action="store_true", help="only the Kubernetes benchmarks")
    a = ap.parse_args()
    ensure_builds()
    work = tempfile.mkdtemp(prefix="keelson-bench-")
    try:
        sizes = [bench_size(a, int(n), work) for n in a.apps.split(",")]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    sizes = [s for s in sizes if s]
    if sizes:
        print("\nno-op reconcile --dry-run: keelson's peak RSS per object count")
        print(f"{'objects':>8} {'peak RSS':>10} {'per 1,000 objects':>18}")
        for objects, rss in sizes:
            print(f"{objects:>8} {rss:>6.0f} MiB {rss * 1000 / objects:>14.1f} MiB")


if __name__ == "__main__":
    main()
