"""Static checks of Dockerfile.consumer and Dockerfile.scheduler (no Docker engine runs here):
what they copy exists and is in the build context, the binaries they build are workspace
`[[bin]]`s, the runtime stage is shell-less and non-root, and they agree with the chart."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

import pytest
import tomllib

from conftest import REPO, SCHEDULERS_ON, chart_defaults, pod_specs, render, workspace_bins, workspace_members

IMAGES = {
    "Dockerfile.consumer": {"bins": ["dm-consumer"], "deployments": ["data-manager-consumer"]},
    # dm-demo rides along for docker-compose's one-shot `seed` service (deploy/docker-compose.yml).
    "Dockerfile.scheduler": {"bins": ["dm-auditor", "dm-analytics", "dm-demo"],
                             "deployments": ["data-manager-auditor", "data-manager-analytics"]},
}


@dataclass
class Instruction:
    op: str
    args: str
    flags: dict[str, str] = field(default_factory=dict)


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction]


def parse(dockerfile: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with line continuations joined and comments dropped."""
    text = (REPO / dockerfile).read_text()
    lines, current = [], ""
    for raw in text.splitlines():
        if raw.lstrip().startswith("#") and not current:
            continue
        if raw.rstrip().endswith("\\"):
            current += raw.rstrip()[:-1] + " "
            continue
        current += raw
        if current.strip():
            lines.append(current.strip())
        current = ""
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in lines:
        op, _, rest = line.partition(" ")
        op = op.upper()
        flags = {}
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            key, _, value = flag[2:].partition("=")
            flags[key] = value
        if op == "FROM":
            words = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], words[0])
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base, name, []))
        elif op == "ARG" and not stages:
            key, _, value = rest.partition("=")
            args[key] = value
        else:
            stages[-1].instructions.append(Instruction(op, rest.strip(), flags))
    return args, stages


def dockerignore_patterns() -> list[tuple[bool, str]]:
    patterns = []
    for line in (REPO / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            patterns.append((line.startswith("!"), line.lstrip("!").rstrip("/")))
    return patterns


def _docker_match(pattern: str, path: str) -> bool:
    """Go's filepath.Match as Docker uses it: `*` and `?` stay within one path segment, `**`
    spans segments."""
    regex = ""
    for token in re.split(r"(\*\*|\*|\?)", pattern):
        regex += {"**": ".*", "*": "[^/]*", "?": "[^/]"}.get(token, re.escape(token))
    return re.fullmatch(regex, path) is not None


def excluded_from_context(path: str) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern also excludes what is under it."""
    excluded = False
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for negated, pattern in dockerignore_patterns():
        if any(_docker_match(pattern, p) for p in prefixes):
            excluded = not negated
    return excluded


def copies(stage: Stage) -> list[tuple[list[str], str, dict[str, str]]]:
    out = []
    for ins in stage.instructions:
        if ins.op == "COPY":
            *sources, dest = shlex.split(ins.args)
            out.append((sources, dest, ins.flags))
    return out


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_every_copy_source_exists_in_the_build_context(dockerfile):
    _, stages = parse(dockerfile)
    stage_names = {s.name for s in stages}
    context_sources = set()
    for stage in stages:
        for sources, _, flags in copies(stage):
            if "from" in flags:
                assert flags["from"] in stage_names, flags
                continue
            for source in sources:
                context_sources.add(source)
                assert (REPO / source).exists(), source
                assert not excluded_from_context(source), f"{source} is excluded by .dockerignore"
    assert context_sources == {"Cargo.toml", "Cargo.lock", "crates"}


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_built_and_copied_binaries_are_workspace_bins(dockerfile):
    _, stages = parse(dockerfile)
    builder = next(s for s in stages if s.name == "builder")
    build = " ".join(i.args for i in builder.instructions if i.op == "RUN" and "cargo build" in i.args)
    built_bins = re.findall(r"--bin (\S+)", build)
    built_packages = re.findall(r"--package (\S+)", build)
    assert built_bins == IMAGES[dockerfile]["bins"]
    bins = workspace_bins()
    for name, package in zip(built_bins, built_packages, strict=True):
        assert bins[name] == package, (name, package)
    assert "--release" in build and "--locked" in build
    runtime = stages[-1]
    copied = [(sources[0], dest) for sources, dest, flags in copies(runtime) if flags.get("from") == "builder"]
    assert copied == [(f"/src/target/release/{b}", f"/usr/local/bin/{b}") for b in IMAGES[dockerfile]["bins"]]


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_dependencies_are_cooked_in_their_own_layer_before_the_sources_are_copied(dockerfile):
    _, stages = parse(dockerfile)
    builder = next(s for s in stages if s.name == "builder")
    ops = [(i.op, i.args) for i in builder.instructions]
    cook = next(n for n, (op, a) in enumerate(ops) if op == "RUN" and "cargo chef cook --release" in a)
    first_source_copy = next(n for n, (op, a) in enumerate(ops) if op == "COPY" and "crates" in a)
    build = next(n for n, (op, a) in enumerate(ops) if op == "RUN" and "cargo build" in a)
    assert cook < first_source_copy < build
    planner = next(s for s in stages if s.name == "planner")
    assert any("cargo chef prepare" in i.args for i in planner.instructions)


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_runtime_stage_is_distroless_without_shell_and_runs_as_the_charts_non_root_user(dockerfile):
    args, stages = parse(dockerfile)
    assert len(stages) == 4
    runtime = stages[-1]
    assert runtime.base == "gcr.io/distroless/cc-debian12:nonroot"
    assert [i.op for i in runtime.instructions if i.op == "RUN"] == []  # no shell to run one
    [user] = [i.args for i in runtime.instructions if i.op == "USER"]
    uid, gid = (int(x) for x in user.split(":"))
    assert uid != 0 and gid != 0
    security = chart_defaults()["podSecurityContext"]
    assert (uid, gid) == (security["runAsUser"], security["runAsGroup"])
    [entrypoint] = [i.args for i in runtime.instructions if i.op == "ENTRYPOINT"]
    assert entrypoint.startswith("[")  # exec form: no /bin/sh -c


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_exposed_port_is_the_charts_metrics_port_and_the_binaries_default(dockerfile):
    _, stages = parse(dockerfile)
    exposed = [i.args for i in stages[-1].instructions if i.op == "EXPOSE"]
    assert exposed == [str(chart_defaults()["metricsPort"])] == ["9090"]
    runtime_config = (REPO / "crates/runtime/src/config.rs").read_text()
    assert re.search(r'env = "METRICS_PORT", default_value_t = 9090', runtime_config)


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_builder_uses_the_workspace_rust_version(dockerfile):
    args, stages = parse(dockerfile)
    rust_version = tomllib.loads((REPO / "Cargo.toml").read_text())["workspace"]["package"]["rust-version"]
    assert args["RUST_VERSION"] == rust_version
    assert stages[0].base == f"rust:{rust_version}-slim-bookworm"


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_chart_runs_binaries_that_the_image_contains(dockerfile):
    _, stages = parse(dockerfile)
    in_image = {dest for _, dest, _ in copies(stages[-1])}
    specs = pod_specs(render(SCHEDULERS_ON))
    for deployment in IMAGES[dockerfile]["deployments"]:
        [container] = specs[deployment]["containers"]
        assert container["command"][0] in in_image, (deployment, container["command"])


def test_dockerignore_keeps_what_cargo_needs_and_drops_the_rest():
    for needed in ("Cargo.toml", "Cargo.lock", "crates", "crates/consumer/src/main.rs", "crates/auditor/README.md"):
        assert not excluded_from_context(needed), needed
    for dropped in ("target", "target/release/dm-consumer", ".git", ".venv-helm", "helm/values.yaml", "tests/deploy", "README.md"):
        assert excluded_from_context(dropped), dropped


def test_every_workspace_member_is_copied():
    members = tomllib.loads((REPO / "Cargo.toml").read_text())["workspace"]["members"]
    assert all(m.startswith("crates/") for m in members)
    assert set(workspace_members()) >= {"consumer", "auditor", "analytics"}
