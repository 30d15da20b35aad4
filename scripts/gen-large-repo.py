#!/usr/bin/env python3
"""Generate a large environments repository for benchmarks.

usage: scripts/gen-large-repo.py OUT [--apps 1000] [--envs 3]

Every environment gets the same N apps (a realistic mix of JVM services with
domains, Node services, Go services and workers without ports), a pipeline
with a tag per app, and the example's policies and schemas.
"""
import argparse, os, shutil

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

def app(i):
    kind = i % 4
    name = f"svc-{i:05d}"
    lines = [f"    - name: {name}", f"      image: registry.example.com/bench/{name}"]
    if kind == 0:
        lines += ["      runtime: jvm", "      replicas: 2", '      cpu: "1"', "      memory: 1Gi",
                  "      ports:", "        - name: http", "          port: 8080",
                  "      health:", "        path: /actuator/health", "        port: http",
                  "      env:", "        SPRING_PROFILES_ACTIVE: bench"]
    elif kind == 1:
        lines += ["      runtime: node", "      replicas: 2", "      cpu: 500m", "      memory: 512Mi",
                  "      ports:", "        - name: http", "          port: 3000",
                  "      health:", "        path: /healthz"]
    elif kind == 2:
        lines += ["      runtime: go", "      replicas: 2", "      cpu: 250m", "      memory: 256Mi",
                  "      ports:", "        - name: grpc", "          port: 9090", "        - name: metrics", "          port: 9100",
                  "      health:", "        path: /healthz", "        port: metrics"]
    else:
        lines += ["      runtime: python", "      replicas: 2", "      cpu: 250m", "      memory: 256Mi",
                  '      command: ["python", "-m", "worker"]']
    return "\n".join(lines)

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--apps", type=int, default=1000)
    ap.add_argument("--envs", type=int, default=3)
    a = ap.parse_args()
    shutil.rmtree(a.out, ignore_errors=True)
    for sub in ("policies", "schema"):
        shutil.copytree(os.path.join(ROOT, sub), os.path.join(a.out, sub))
    names = ["dev", "staging", "prod"] + [f"env-{i}" for i in range(3, a.envs)]
    for e in names[: a.envs]:
        d = os.path.join(a.out, "environments", e)
        os.makedirs(d)
        apps = "\n".join(app(i) for i in range(a.apps))
        with open(os.path.join(d, "environment.yaml"), "w") as f:
            f.write(f"apiVersion: keelson.dev/v1\nkind: Environment\nmetadata:\n  name: {e}\nspec:\n"
                    f"  cluster: bench\n  namespace: bench-{e}\n  prune:\n    maxDeletePercent: 100\n  apps:\n{apps}\n")
        with open(os.path.join(d, "pipeline.yaml"), "w") as f:
            f.write("apiVersion: keelson.dev/v1\nkind: Pipeline\nspec:\n  apps:\n")
            for i in range(a.apps):
                dom = f"\n      domain: svc-{i:05d}.{e}.bench.example.com" if i % 4 == 0 else ""
                f.write(f"    svc-{i:05d}:\n      tag: \"1.{i % 50}.{i % 7}\"{dom}\n")

main()
