"""`make chart`: lint the chart (strict) and render it into rendered/<value set>/, then validate
every manifest with kubernetes-validate --strict. Exit status 1 on any finding.

    .venv-helm/bin/python tests/deploy/chart.py [-f my-values.yaml]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import helm_python
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from conftest import CHART, DEFAULTS, EVERYTHING_ON, NAMESPACE, RELEASE, REPO, kube_versions  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-f", "--values", type=Path, help="also render this values file")
    parser.add_argument("--out", type=Path, default=REPO / "rendered")
    args = parser.parse_args()

    value_sets = {"defaults": DEFAULTS, "everything-on": EVERYTHING_ON}
    if args.values:
        value_sets[args.values.stem] = yaml.safe_load(args.values.read_text()) or {}

    failed = False
    shutil.rmtree(args.out, ignore_errors=True)
    for name, values in value_sets.items():
        report = helm_python.lint(CHART, values, strict=True, namespace=NAMESPACE,
                                  kube_version=f"v{kube_versions()[-1]}")
        for m in report["messages"]:
            print(f"lint[{name}] severity={m['severity']} {m['path']}: {m['error']}")
        failed |= bool(report["errors"]) or any(m["severity"] >= 2 for m in report["messages"])
        files = helm_python.Chart.load(CHART).render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
        dest = args.out / name
        dest.mkdir(parents=True)
        paths = []
        for template, text in files.items():
            if template.endswith("NOTES.txt") or not text.strip():
                continue
            path = dest / Path(template).name
            path.write_text(text)
            paths.append(str(path))
        for version in kube_versions():
            cli = Path(sys.executable).parent / "kubernetes-validate"
            result = subprocess.run([str(cli), "--strict", "--quiet", "-k", version, *paths])
            failed |= result.returncode != 0
        print(f"rendered {len(paths)} manifests for '{name}' into {dest}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
