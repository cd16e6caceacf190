"""Renders the chart with schedulers on, exactly as `helm install` would (the Helm v4 library of
tests/deploy), and writes its scheduler ServiceAccount, Role and RoleBinding as one JSON object
{"serviceAccount": …, "role": …, "roleBinding": …, "leases": [...]} for the real-server tests.

    .venv-helm/bin/python tests/k8s/render_chart_rbac.py OUT.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy"))
from conftest import CHART, NAMESPACE, RELEASE, SCHEDULERS_ON, Rendered  # noqa: E402

import helm_python  # noqa: E402


def main() -> int:
    out = Path(sys.argv[1])
    files = helm_python.Chart.load(CHART).render(SCHEDULERS_ON, name=RELEASE, namespace=NAMESPACE, is_install=True)
    rendered = Rendered(files)
    (role,) = rendered.of_kind("Role")
    (binding,) = rendered.of_kind("RoleBinding")
    accounts = [a for a in rendered.of_kind("ServiceAccount")
                if any(s["name"] == a["metadata"]["name"] for s in binding["subjects"])]
    if len(accounts) != 1:
        print(f"render_chart_rbac: expected one ServiceAccount bound by {binding['metadata']['name']}", file=sys.stderr)
        return 1
    leases = sorted({n for rule in role["rules"] for n in rule.get("resourceNames", [])})
    out.write_text(json.dumps({"serviceAccount": accounts[0], "role": role, "roleBinding": binding,
                               "leases": leases}, indent=2))
    print(f"render_chart_rbac: Role {role['metadata']['name']} ({len(role['rules'])} rules, "
          f"Leases {', '.join(leases)}) -> {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
