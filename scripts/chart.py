#!/usr/bin/env python3
"""Renders and lints the Helm chart offline with Helm's own engine (PyPI helm-python-sdk).

  chart.py check CHART OUTDIR   lint strictly, render the defaults and every examples/*.yaml,
                                write OUTDIR/<values>.yaml, print the objects per values file
  chart.py json CHART [VALUES]  print the rendered objects as JSON (for the drift test)

Exit status 1 on a lint finding of warning or above, a template that fails to render, a
document that is not YAML or a dashboard that is not JSON.
"""
import json
import pathlib
import sys

import helm_python as helm
import yaml

NAMESPACE = "xiaoneng"


def values_sets(chart: pathlib.Path):
    yield "defaults", {}
    for f in sorted((chart / "examples").glob("*.yaml")):
        yield f.stem, yaml.safe_load(f.read_text()) or {}


def render(chart: pathlib.Path, values: dict) -> list:
    c = helm.Chart.load(str(chart))
    out = c.render(values=values, name="xiaoneng", namespace=NAMESPACE, is_install=True)
    docs = []
    for path in sorted(out):
        for doc in yaml.safe_load_all(out[path]):
            if doc:
                docs.append(doc)
    return docs


def check(chart: pathlib.Path, outdir: pathlib.Path) -> int:
    failed = 0
    outdir.mkdir(parents=True, exist_ok=True)
    for f in sorted((chart / "dashboards").glob("*.json")):
        try:
            json.loads(f.read_text())
        except ValueError as e:
            print(f"dashboard {f.name} is not JSON: {e}")
            failed = 1
    for name, values in values_sets(chart):
        report = helm.lint(str(chart), values, strict=True, namespace=NAMESPACE)
        bad = [m for m in report["messages"] if m["severity"] >= 2] + [{"error": e} for e in report["errors"]]
        for m in bad:
            print(f"lint ({name}): {m.get('path', '')} {m['error']}")
            failed = 1
        try:
            docs = render(chart, values)
        except helm.HelmError as e:
            print(f"render ({name}) failed: {e}")
            failed = 1
            continue
        (outdir / f"{name}.yaml").write_text(yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True))
        kinds = {}
        for d in docs:
            kinds.setdefault(d["kind"], []).append(d["metadata"]["name"])
        print(f"{name}: {len(docs)} objects")
        for kind in sorted(kinds):
            print(f"  {kind} ({len(kinds[kind])}): {', '.join(sorted(kinds[kind]))}")
    return failed


def main() -> int:
    if len(sys.argv) >= 4 and sys.argv[1] == "check":
        return check(pathlib.Path(sys.argv[2]), pathlib.Path(sys.argv[3]))
    if len(sys.argv) >= 3 and sys.argv[1] == "json":
        chart = pathlib.Path(sys.argv[2])
        values = yaml.safe_load(pathlib.Path(sys.argv[3]).read_text()) if len(sys.argv) > 3 else {}
        json.dump(render(chart, values or {}), sys.stdout)
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())
