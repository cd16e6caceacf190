"""`make test-images`: the Dockerfiles' runtime stages, built by a real Docker engine and run.

No registry is reachable, so the bases are made here: the runtime base holds exactly the
distribution's libc6 and libgcc-s1 (what distroless/cc carries for us), unpacked with dpkg-deb,
plus /etc/passwd, /tmp and the CA bundle; no shell. The release binaries of this checkout stand
in for the builder stage (the Dockerfiles' BINARIES argument). Each image then runs with a
read-only root filesystem, every capability dropped and no new privileges, as the image's own
non-root user; it is probed, and SIGTERM must stop it with status 0."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from conftest import REPO
from services import NATS_URL, free_port, http_get, secantus, unique_name, wait_until
from test_dockerfiles import bins, parse

DOCKER = os.environ.get("DOCKER", "/usr/bin/docker" if Path("/usr/bin/docker").exists() else "docker")
PROFILE = os.environ.get("DM_IMAGE_PROFILE", "release")
TAG = "dm-test"
LOCKED_DOWN = ["--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "--network", "host"]


def docker(*args: str, input: bytes | None = None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([DOCKER, *args], input=input, capture_output=True,
                            env={**os.environ, "DOCKER_BUILDKIT": "1"})
    if check:
        assert result.returncode == 0, f"docker {' '.join(args)}: {result.stdout.decode()[-3000:]}{result.stderr.decode()[-3000:]}"
    return result


def tar_of(files: dict[str, Path | bytes], dirs: dict[str, int] = {}) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, mode in dirs.items():
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        for name, content in files.items():
            if isinstance(content, Path):
                tar.add(content, arcname=name)
            else:
                info = tarfile.TarInfo(name)
                info.size, info.mode = len(content), 0o644
                tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


@pytest.fixture(scope="session")
def engine():
    assert docker("info", check=False).returncode == 0, "no Docker engine: run tests/deploy/ensure-docker.sh"


@pytest.fixture(scope="session")
def base_image(engine, tmp_path_factory) -> str:
    work = tmp_path_factory.mktemp("base")
    download = ["apt-get", "download", "libc6", "libgcc-s1"]
    if subprocess.run(download, cwd=work, capture_output=True).returncode != 0:  # no package lists yet
        sudo = [] if os.geteuid() == 0 else ["sudo"]
        subprocess.run([*sudo, "apt-get", "update", "-qq"], check=True, capture_output=True)
        subprocess.run(download, cwd=work, check=True, capture_output=True)
    root = work / "root"
    for deb in work.glob("*.deb"):
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    (root / "etc/ssl/certs").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")
    (root / "etc/group").write_text("root:x:0:\nnonroot:x:65532:\n")
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    if bundle.exists():
        (root / "etc/ssl/certs/ca-certificates.crt").write_bytes(bundle.read_bytes())
    (root / "tmp").mkdir(mode=0o1777)
    (root / "home/nonroot").mkdir(parents=True)
    if os.geteuid() == 0:  # as in distroless: the user owns its home
        os.chown(root / "home/nonroot", 65532, 65532)
    listing = subprocess.run(["tar", "-C", str(root), "-c", "."], check=True, capture_output=True).stdout
    docker("import", "-", f"{TAG}-base:local", input=listing)
    return f"{TAG}-base:local"


def dockerfile_bins(dockerfile: str) -> tuple[list[str], list[str]]:
    args, _ = parse(dockerfile)
    return [b for _, b in bins(args)], [b for _, b in bins(args, "DEMO_BINS")]


@pytest.fixture(scope="session")
def release_binaries() -> Path:
    """This checkout's binaries for both images, built once (`--release` unless DM_IMAGE_PROFILE=debug)."""
    if os.environ.get("DM_IMAGE_BIN_DIR"):  # binaries built elsewhere
        return Path(os.environ["DM_IMAGE_BIN_DIR"])
    names = [b for f in ("Dockerfile.consumer", "Dockerfile.scheduler") for b in sum(dockerfile_bins(f), [])]
    if PROFILE == "release":
        selection = ["--release", *(a for n in names for a in ("--bin", n))]
    else:  # exactly `make build`'s selection, so the debug build make test made is reused as is
        selection = ["--workspace", "--bins"]
    subprocess.run(["cargo", "build", "--locked", *selection], cwd=REPO, check=True)
    return REPO / "target" / PROFILE


def build(dockerfile: str, base: str, binaries_dir: Path, target: str | None = None) -> str:
    shipped, demo = dockerfile_bins(dockerfile)
    files = {f"out/bin/{b}": binaries_dir / b for b in shipped} | {f"out/demo/{b}": binaries_dir / b for b in demo}
    stem = dockerfile.split(".")[1]
    binaries = f"{TAG}-{stem}-binaries:local"
    docker("import", "-", binaries, input=tar_of(files, {"out": 0o755, "out/bin": 0o755, "out/demo": 0o755}))
    tag = f"{TAG}-{target or stem}:local"
    docker("build", "-q", "-f", dockerfile, *(["--target", target] if target else []),
           "--build-arg", f"RUNTIME_IMAGE={base}", "--build-arg", f"BINARIES={binaries}", "-t", tag, str(REPO))
    return tag


@pytest.fixture(scope="session")
def images(base_image, release_binaries) -> dict[str, str]:
    return {
        "consumer": build("Dockerfile.consumer", base_image, release_binaries),
        "scheduler": build("Dockerfile.scheduler", base_image, release_binaries),
        "demo": build("Dockerfile.scheduler", base_image, release_binaries, target="demo"),
    }


def image_files(image: str) -> set[str]:
    container = docker("create", image).stdout.decode().strip()
    try:
        exported = docker("export", container).stdout
    finally:
        docker("rm", container)
    with tarfile.open(fileobj=io.BytesIO(exported)) as tar:
        return {m.name.lstrip("./") for m in tar.getmembers()}


@pytest.mark.parametrize("image, expected", [
    ("consumer", ["dm-consumer"]), ("scheduler", ["dm-analytics", "dm-api", "dm-auditor"]),
    ("demo", ["dm-analytics", "dm-api", "dm-auditor", "dm-demo"]),
])
def test_image_holds_its_binaries_no_shell_and_a_non_root_user(images, image, expected):
    files = image_files(images[image])
    assert sorted(f.rsplit("/", 1)[1] for f in files if f.startswith("usr/local/bin/") and f != "usr/local/bin/") == expected
    assert not {"bin/sh", "usr/bin/sh", "bin/bash", "usr/bin/bash", "bin/busybox"} & files
    config = json.loads(docker("image", "inspect", images[image]).stdout)[0]["Config"]
    assert config["User"] == "65532:65532"
    assert config["ExposedPorts"] == {"9090/tcp": {}}


def run_locked_down(image: str, env: dict[str, str], args: list[str] = (), entrypoint: str | None = None):
    port = free_port()
    env = {**env, "METRICS_PORT": str(port), "LOG_FORMAT": "json"}
    argv = ["run", "-d", *LOCKED_DOWN, *(f"--env={k}={v}" for k, v in env.items())]
    if entrypoint:
        argv += ["--entrypoint", entrypoint]
    container = docker(*argv, image, *args).stdout.decode().strip()
    return container, port


def probe_then_sigterm(container: str, port: int) -> None:
    try:
        def ready():
            state = json.loads(docker("inspect", container).stdout)[0]["State"]
            assert state["Running"], f"exited {state['ExitCode']}: {docker('logs', container).stderr.decode()[-2000:]}"
            return http_get(port, "/health/readiness")[0] == 200
        wait_until(f"{container[:12]} ready", ready, timeout=90, interval=0.2)
        assert http_get(port, "/health/liveness")[0] == 200
        rows = docker("top", container, "-eo", "pid,uid").stdout.decode().split("\n")[1:]
        uids = [r.split()[1] for r in rows if r.strip()]
        assert uids and set(uids) == {"65532"}, uids
        assert "data_manager_" in http_get(port, "/metrics")[1]
        docker("stop", "--time", "25", container)  # SIGTERM, then SIGKILL after 25 s
        state = json.loads(docker("inspect", container).stdout)[0]["State"]
        logs = docker("logs", container).stdout.decode() + docker("logs", container).stderr.decode()
        assert (state["ExitCode"], state["OOMKilled"]) == (0, False), logs[-3000:]
        assert '"level":"ERROR"' not in logs, logs[-3000:]
    finally:
        docker("rm", "-f", container, check=False)


def test_consumer_image_runs_locked_down_and_stops_cleanly(images):
    subject = unique_name("t.images").replace("_", ".")
    container, port = run_locked_down(images["consumer"], {"NATS_URL": NATS_URL, "NATS_CONSUMER_SUBJECT": subject})
    probe_then_sigterm(container, port)


@pytest.fixture(scope="module")
def seeded(images):
    """The demo image's `dm-demo seed`, locked down too, fills a fresh database."""
    name = unique_name()
    url = f"mysql://root@127.0.0.1:3306/{name}"
    result = docker("run", "--rm", *LOCKED_DOWN, f"--env=MYSQL_URI={url}", "--entrypoint", "/usr/local/bin/dm-demo",
                    images["demo"], "seed", "--symbols", "BTCUSDT", "--days", "3", "--fine-days", "2")
    assert b"seeded" in result.stdout + result.stderr
    with secantus() as mongo:
        yield url, mongo
    subprocess.run(["mariadb", "-h", "127.0.0.1", "-u", "root", "-e", f"DROP DATABASE IF EXISTS `{name}`"], check=False)


@pytest.mark.parametrize("binary", ["dm-auditor", "dm-analytics"])
def test_scheduler_image_runs_locked_down_and_stops_cleanly(images, seeded, binary):
    mysql, mongo = seeded
    env = {"LEADER_ELECTION": "disabled", "MYSQL_URI": mysql, "MONGODB_URL": f"{mongo}/{unique_name()}",
           "SUPPORTED_PAIRS": "BTCUSDT"}
    container, port = run_locked_down(images["scheduler"], env, ["run"], entrypoint=f"/usr/local/bin/{binary}")
    probe_then_sigterm(container, port)
