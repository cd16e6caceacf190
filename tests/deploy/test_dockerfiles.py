"""Static checks of Dockerfile.consumer and Dockerfile.scheduler (`make test-images` builds and
runs them): what they copy exists and is in the build context, the binaries they build are
workspace `[[bin]]`s named once, bases and tools are pinned, the runtime stage is shell-less and
non-root, dm-demo stays out of the production image, and they agree with the chart."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

import pytest
import tomllib
import yaml

from conftest import REPO, SCHEDULERS_ON, chart_defaults, pod_specs, render, workspace_bins, workspace_members

# Per Dockerfile: the default (production) target, the binaries it ships, the chart's
# Deployments that run it, and extra targets with their extra binaries.
IMAGES = {
    "Dockerfile.consumer": {"target": "consumer", "bins": ["dm-consumer"],
                            "deployments": ["data-manager-consumer"], "extra": {}},
    # dm-demo only in the `demo` target, which deploy/docker-compose.yml's `seed` service runs.
    "Dockerfile.scheduler": {"target": "scheduler", "bins": ["dm-auditor", "dm-analytics", "dm-api"],
                             "deployments": ["data-manager-auditor", "data-manager-analytics"],
                             "extra": {"demo": ["dm-demo"]}},
}
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


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
            args[key] = value.strip('"')
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


def stage(stages: list[Stage], name: str) -> Stage:
    return next(s for s in stages if s.name == name)


def bins(args: dict[str, str], key: str = "BINS") -> list[tuple[str, str]]:
    """`package:binary` pairs of a BINS-style build argument."""
    return [tuple(word.split(":")) for word in args.get(key, "").split()]


def shipped(args: dict[str, str], stages: list[Stage], target: str) -> list[str]:
    """The binaries an image target holds: what its stage (and the stages it is built FROM)
    copy out of the builder's /out/<dir>/."""
    out, names = [], {s.name: s for s in stages}
    current = names[target]
    while True:
        for sources, dest, flags in copies(current):
            if flags.get("from") == "binaries":
                assert dest == "/usr/local/bin/" and sources[0] in ("/out/bin/", "/out/demo/"), (sources, dest)
                out = [b for _, b in bins(args, "BINS" if sources[0] == "/out/bin/" else "DEMO_BINS")] + out
        if current.base not in names:
            return out
        current = names[current.base]


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_each_target_ships_exactly_its_binaries_and_they_are_workspace_bins(dockerfile):
    args, stages = parse(dockerfile)
    image = IMAGES[dockerfile]
    assert stages[-1].name == image["target"]  # the default target is the production image
    assert shipped(args, stages, image["target"]) == image["bins"]
    for target, extra in image["extra"].items():
        assert shipped(args, stages, target) == image["bins"] + extra
    workspace = workspace_bins()
    for package, name in bins(args) + bins(args, "DEMO_BINS"):
        assert workspace[name] == package, (name, package)


def test_the_production_scheduler_image_has_no_demo_tool():
    args, stages = parse("Dockerfile.scheduler")
    assert "dm-demo" not in shipped(args, stages, "scheduler")
    assert "dm-demo" in shipped(args, stages, "demo")


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_adding_a_binary_is_a_one_line_change(dockerfile):
    """Each binary is named once, in its BINS argument (and the ENTRYPOINT for the default one):
    the build, the copy out of the builder and into the image all follow that list."""
    args, stages = parse(dockerfile)
    # Every instruction but the descriptive LABELs, and the global ARG values.
    code = "\n".join([*args.values(), *(f"{i.op} {i.args}" for s in stages for i in s.instructions if i.op != "LABEL")])
    for _, name in bins(args) + bins(args, "DEMO_BINS"):
        in_entrypoint = f'ENTRYPOINT ["/usr/local/bin/{name}"]' in code
        assert len(re.findall(rf"\b{name}\b", code)) == 1 + in_entrypoint, name
    builder = stage(stages, "builder")
    build = " ".join(i.args for i in builder.instructions if i.op == "RUN" and "cargo build" in i.args)
    assert "--release --locked" in build and "$BINS" in build


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_dependencies_are_cooked_once_in_their_own_layer_before_the_sources_are_copied(dockerfile):
    _, stages = parse(dockerfile)
    builder = stage(stages, "builder")
    ops = [(i.op, i.args) for i in builder.instructions]
    cooks = [n for n, (op, a) in enumerate(ops) if op == "RUN" and "cargo chef cook" in a]
    assert len(cooks) == 1 and ops[cooks[0]][1].count("cargo chef cook") == 1, ops
    assert "--release --locked" in ops[cooks[0]][1]
    first_source_copy = next(n for n, (op, a) in enumerate(ops) if op == "COPY" and "crates" in a)
    build = next(n for n, (op, a) in enumerate(ops) if op == "RUN" and "cargo build" in a)
    assert cooks[0] < first_source_copy < build
    planner = stage(stages, "planner")
    assert any("cargo chef prepare" in i.args for i in planner.instructions)


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_base_images_and_cargo_chef_are_pinned_exactly_and_overridable(dockerfile):
    args, stages = parse(dockerfile)
    text = (REPO / dockerfile).read_text()
    for key in ("RUST_IMAGE", "RUNTIME_IMAGE"):
        assert DIGEST.search(args[key]), (key, args[key])
    assert re.fullmatch(r"\d+\.\d+\.\d+", args["CARGO_CHEF_VERSION"])
    chef = stage(stages, "chef")
    [install] = [i.args for i in chef.instructions if i.op == "RUN" and "cargo install" in i.args]
    assert install == 'cargo install cargo-chef --locked --version "=${CARGO_CHEF_VERSION}"'
    names = {s.name for s in stages}
    raw_froms = re.findall(r"^FROM (\S+)", text, re.MULTILINE)
    for base in raw_froms:  # an argument (a mirror can override it) or an earlier stage
        assert base in names or base in ("${RUST_IMAGE}", "${RUNTIME_IMAGE}", "${BINARIES}"), base
    assert not re.search(r"^# *syntax=", text, re.MULTILINE)  # no frontend pulled at build time


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_runtime_stage_is_distroless_without_shell_and_runs_as_the_charts_non_root_user(dockerfile):
    args, stages = parse(dockerfile)
    runtime = next(s for s in stages if s.base == args["RUNTIME_IMAGE"])
    assert runtime.base.startswith("gcr.io/distroless/cc-debian12:nonroot@sha256:")
    for s in stages[stages.index(runtime):]:
        assert [i.op for i in s.instructions if i.op == "RUN"] == []  # no shell to run one
    [user] = [i.args for i in runtime.instructions if i.op == "USER"]
    uid, gid = (int(x) for x in user.split(":"))
    assert uid != 0 and gid != 0
    security = chart_defaults()["podSecurityContext"]
    assert (uid, gid) == (security["runAsUser"], security["runAsGroup"])
    [entrypoint] = [i.args for i in runtime.instructions if i.op == "ENTRYPOINT"]
    assert entrypoint.startswith("[")  # exec form: no /bin/sh -c


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_exposed_port_is_the_charts_metrics_port_and_the_binaries_default(dockerfile):
    args, stages = parse(dockerfile)
    runtime = next(s for s in stages if s.base == args["RUNTIME_IMAGE"])
    exposed = [i.args for i in runtime.instructions if i.op == "EXPOSE"]
    assert exposed == [str(chart_defaults()["metricsPort"])] == ["9090"]
    runtime_config = (REPO / "crates/runtime/src/config.rs").read_text()
    assert re.search(r'env = "METRICS_PORT", default_value_t = 9090', runtime_config)


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_builder_uses_the_workspace_rust_version(dockerfile):
    args, stages = parse(dockerfile)
    rust_version = tomllib.loads((REPO / "Cargo.toml").read_text())["workspace"]["package"]["rust-version"]
    assert args["RUST_IMAGE"].startswith(f"rust:{rust_version}-slim-bookworm@sha256:")
    assert stages[0].base == args["RUST_IMAGE"]


@pytest.mark.parametrize("dockerfile", sorted(IMAGES))
def test_chart_runs_binaries_that_the_image_contains(dockerfile):
    args, stages = parse(dockerfile)
    in_image = {f"/usr/local/bin/{b}" for b in shipped(args, stages, IMAGES[dockerfile]["target"])}
    specs = pod_specs(render(SCHEDULERS_ON))
    for deployment in IMAGES[dockerfile]["deployments"]:
        [container] = specs[deployment]["containers"]
        assert container["command"][0] in in_image, (deployment, container["command"])


def test_compose_runs_the_demo_target_for_the_seed_and_the_schedulers():
    compose = yaml.safe_load((REPO / "deploy/docker-compose.yml").read_text())
    services = compose["services"]
    assert services["seed"]["build"] == {"context": "..", "dockerfile": "Dockerfile.scheduler", "target": "demo"}
    assert services["consumer"]["build"]["dockerfile"] == "Dockerfile.consumer"
    for name in ("auditor", "analytics"):
        assert services[name]["image"] == services["seed"]["image"]
    assert services["seed"]["entrypoint"] == ["/usr/local/bin/dm-demo"]


def test_dockerignore_keeps_what_cargo_needs_and_drops_the_rest():
    for needed in ("Cargo.toml", "Cargo.lock", "crates", "crates/consumer/src/main.rs", "crates/auditor/README.md"):
        assert not excluded_from_context(needed), needed
    for dropped in ("target", "target/release/dm-consumer", ".git", ".venv-helm", "helm/values.yaml", "tests/deploy", "README.md"):
        assert excluded_from_context(dropped), dropped


def test_every_workspace_member_is_copied():
    members = tomllib.loads((REPO / "Cargo.toml").read_text())["workspace"]["members"]
    assert all(m.startswith("crates/") for m in members)
    assert set(workspace_members()) >= {"consumer", "auditor", "analytics"}
