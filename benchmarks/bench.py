"""`make bench`: how fast valohai-cfn is, each figure against a floor measured in the same run, so that the
machine's speed (and whatever else runs on it) cancels out. Each line gives the figure, its floor, their
ratio and the target; the bench fails when a target is missed.

1. `valohai-cfn build` (both formats) against a bare `python -c "import troposphere, awacs"` of the same
   virtual environment, in fresh processes, run in turns: wall time at most 2x the floor's, peak memory
   at most 2x.
2. The YAML rendering of a synthetic template ten times larger (copies of the resources) against the
   template itself: at most 15x the time, i.e. linear in the size with a margin.
3. A full deploy of the template to the local AWS: `valohai-cfn deploy` against the same end state by hand
   with awscli on the same server and template (`aws cloudformation deploy`, then termination protection
   and the stack policy): ours takes less time. awscli checks nothing before deploying, so the like-for-like
   run skips our preflight; the default deploy (preflight included) is reported beside it.
4. `make template` on a fresh clone, a new user's first command (a new virtual environment, the package's
   own dependencies, the build), against a new virtual environment with only troposphere and awacs
   installed from the same package index: at most 5x.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from valohai_cfn.params import dump_parameters

BUILD_RUNS = 21  # the median of many runs in turns: this machine kind is noisy (other tenants)
DEPLOY_ROUNDS = 5
RENDER_RUNS = 5
LARGER = 10  # the synthetic template is at least this many times the template's size
LARGER_TIME_TARGET = 15  # ... and takes at most this many times as long to render
# The package's own dependencies (cfn-lint, boto3, rich...) take 2-3.5x as long to install as troposphere and
# awacs alone, from the same cache; a new heavy dependency shows as more.
FIRST_TEMPLATE_TARGET = 5.0
BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parent.parent
STACK_POLICY = REPO / "templates" / "stack-policy.json"
FLOOR_IMPORT = "import troposphere, awacs"
BUILD_IMPORTS = "import valohai_cfn.cli.template, valohai_cfn.template, valohai_cfn.render"


@dataclass(frozen=True)
class Figure:
    """A measurement against its floor: `value / floor` must be at most `target` (under it, if `strict`);
    with no target it is reported only."""

    name: str
    value: float
    floor: float
    floor_name: str
    target: float | None
    unit: str = "s"
    strict: bool = False

    @property
    def ratio(self) -> float:
        return self.value / self.floor

    @property
    def ok(self) -> bool:
        if self.target is None:
            return True
        return self.ratio < self.target if self.strict else self.ratio <= self.target

    def line(self) -> str:
        figures = f"{self.value:.3f} {self.unit}; floor {self.floor:.3f} {self.unit} ({self.floor_name})"
        if self.target is None:
            return f"{self.name}: {figures}; ratio {self.ratio:.2f} (reported, no target)"
        bound = "<" if self.strict else "≤"
        verdict = "ok" if self.ok else "MISSED"
        return f"{self.name}: {figures}; ratio {self.ratio:.2f} (target {bound} {self.target:g}): {verdict}"


def timed(command: list[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> tuple[float, float]:
    """(wall seconds, peak resident MiB) of one command in a new process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=cwd)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(command)}\n{process.stderr.read().decode()}")
    return wall, usage.ru_maxrss / 1024  # KiB on Linux


def in_turns(commands: dict[str, list[str]], runs: int) -> dict[str, list[tuple[float, float]]]:
    """Each command `runs` times, taking turns, after one unmeasured run each (file-system cache, .pyc
    files): a load that comes and goes weighs on all of them alike."""
    for command in commands.values():
        timed(command)
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            results[name].append(timed(command))
    return results


def compile_package() -> None:
    """The package's bytecode, as pip writes it when it installs a package: the floor's troposphere and awacs
    run from theirs. An editable install writes it at the first run, except where PYTHONDONTWRITEBYTECODE is set
    (as on some machines): there every run would compile valohai_cfn's sources again, and so would the bench."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "valohai_cfn")], check=True)


def bench_build() -> list[Figure]:
    compile_package()
    output_dir = tempfile.mkdtemp(prefix="valohai-cfn-bench-")
    try:
        runs = in_turns(
            {
                "floor": [sys.executable, "-c", FLOOR_IMPORT],
                "build": [str(BIN / "valohai-cfn"), "build", "--format", "all", "--output-dir", output_dir],
                "imports": [sys.executable, "-c", BUILD_IMPORTS],
            },
            BUILD_RUNS,
        )
    finally:
        shutil.rmtree(output_dir)
    wall = {name: statistics.median(w for w, _ in values) for name, values in runs.items()}
    peak = {name: max(p for _, p in values) for name, values in runs.items()}
    floor = f'python -c "{FLOOR_IMPORT}", median of {BUILD_RUNS}'
    return [
        Figure("build: median wall", wall["build"], wall["floor"], floor, 2.0),
        Figure("build: peak memory", peak["build"], peak["floor"], f'python -c "{FLOOR_IMPORT}"', 2.0, unit="MiB"),
        # What no faster build or rendering can save: the command line and the stack's modules, imported.
        Figure(f'imports of a build alone: python -c "{BUILD_IMPORTS}"', wall["imports"], wall["floor"], floor, None),
    ]


def larger_template(document: dict, times: int) -> dict:
    """The template with copies of its resources (logical ids suffixed) until its JSON is `times` its size."""
    from valohai_cfn.render import json_text

    target = times * len(json_text(document))
    resources = dict(document["Resources"])
    larger = {**document, "Resources": resources}
    for copy in range(1, 10**4):
        resources.update({f"{name}Copy{copy}": value for name, value in document["Resources"].items()})
        if len(json_text(larger)) >= target:
            return larger
    raise AssertionError("unreachable: each copy adds the resources' size")


def best_time(work: Callable[[], object], runs: int) -> float:
    """The fastest of `runs` runs in this process: what the work costs when nothing else gets in its way."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_yaml_scaling() -> list[Figure]:
    from valohai_cfn.render import json_text, template_dict, yaml_text
    from valohai_cfn.template import build_template

    document = template_dict(build_template())
    larger = larger_template(document, LARGER)
    size = len(json_text(larger)) / len(json_text(document))
    normal = best_time(lambda: yaml_text(document), RENDER_RUNS)
    scaled = best_time(lambda: yaml_text(larger), RENDER_RUNS)
    return [
        Figure(
            f"YAML of a template {size:.1f}x larger ({len(larger['Resources'])} resources): best of {RENDER_RUNS}",
            scaled,
            normal,
            f"the template itself, {len(document['Resources'])} resources",
            LARGER_TIME_TARGET,
        )
    ]


def aws_cli() -> str | None:
    local = REPO / ".venv-awscli" / "bin" / "aws"
    return str(local) if local.exists() else shutil.which("aws")


def _deploy_commands(endpoint: str, network: dict[str, str], tmp: Path, i: int, aws: str) -> dict[str, list[list[str]]]:
    """The three deploys of one round, each creating its own stack (and ResourcePrefix). By hand with awscli,
    the same end state (a stack with termination protection and the stack policy) takes three commands."""
    commands = {}
    for name, extra in (("ours", ["--skip-preflight"]), ("ours+preflight", [])):
        prefix = f"{name.replace('+', '')}{i}"
        params_file = tmp / f"{prefix}.json"
        params_file.write_text(dump_parameters({**network, "ResourcePrefix": prefix}))
        commands[name] = [
            [
                str(BIN / "valohai-cfn"),
                "deploy",
                "--stack-name",
                prefix,
                "--params",
                str(params_file),
                "--yes",
                "--endpoint-url",
                endpoint,
                *extra,
            ]
        ]
    overrides = [f"{k}={v}" for k, v in {**network, "ResourcePrefix": f"cli{i}"}.items()]
    by_hand = [aws, "cloudformation", "--endpoint-url", endpoint]
    commands["awscli"] = [
        [
            aws,
            "cloudformation",
            "deploy",
            "--stack-name",
            f"cli{i}",
            "--template-file",
            str(REPO / "templates" / "valohai-self-hosted.json"),
            "--capabilities",
            "CAPABILITY_NAMED_IAM",
            "CAPABILITY_AUTO_EXPAND",
            "--endpoint-url",
            endpoint,
            "--parameter-overrides",
            *overrides,
        ],
        [*by_hand, "update-termination-protection", "--enable-termination-protection", "--stack-name", f"cli{i}"],
        [*by_hand, "set-stack-policy", "--stack-name", f"cli{i}", "--stack-policy-body", f"file://{STACK_POLICY}"],
    ]
    return commands


def bench_deploy() -> list[Figure]:
    """Like for like, `valohai-cfn deploy --skip-preflight` against the same end state by hand with awscli
    (`aws cloudformation deploy`, which checks nothing first, then termination protection and the stack
    policy): ours must be faster. The default deploy, preflight included, is reported beside them."""
    import boto3

    from valohai_cfn.local_aws import LocalAws, create_demo_network

    aws = aws_cli()
    if aws is None:
        sys.exit("deploy: no `aws` command (make bench installs one in .venv-awscli)")
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    times: dict[str, list[float]] = {"ours": [], "ours+preflight": [], "awscli": []}
    with LocalAws() as server, tempfile.TemporaryDirectory() as tmp:
        ec2 = boto3.client(
            "ec2",
            endpoint_url=server.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="bench",
            aws_secret_access_key="bench",
        )
        network = create_demo_network(ec2, "us-east-1")
        for i in range(DEPLOY_ROUNDS):
            for name, commands in _deploy_commands(server.endpoint_url, network, Path(tmp), i, aws).items():
                times[name].append(sum(timed(command, env)[0] for command in commands))
    median = {name: statistics.median(values) for name, values in times.items()}
    by_hand = f"by hand with awscli: deploy, termination protection, stack policy; median of {DEPLOY_ROUNDS}"
    return [
        Figure("deploy --skip-preflight to the local AWS", median["ours"], median["awscli"], by_hand, 1.0, strict=True),
        # Reported only: awscli has no preflight to compare it with.
        Figure("deploy with its preflight", median["ours+preflight"], median["awscli"], by_hand, None),
    ]


def bench_first_template() -> list[Figure]:
    """`make template` on a fresh clone of the committed tree, as a new user's first command, against a new
    virtual environment with only troposphere and awacs installed (from the same package index and cache)."""
    with tempfile.TemporaryDirectory(prefix="valohai-cfn-clone-") as tmp:
        floor_venv = Path(tmp) / "floor"
        floor = timed([sys.executable, "-m", "venv", str(floor_venv)])[0]
        pip = [str(floor_venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        floor += timed([*pip, "troposphere", "awacs"])[0]
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(clone)], check=True)
        wall, _ = timed(["make", "-C", str(clone), "template"])
    return [
        Figure(
            "first `make template` on a fresh clone",
            wall,
            floor,
            "a new venv with troposphere and awacs installed",
            FIRST_TEMPLATE_TARGET,
        )
    ]


def main() -> int:
    figures = []
    for bench in (bench_build, bench_yaml_scaling, bench_deploy, bench_first_template):
        for figure in bench():
            print(figure.line(), flush=True)
            figures.append(figure)
    missed = [f.name for f in figures if not f.ok]
    if missed:
        print(f"\nMISSED {len(missed)} target(s): {'; '.join(missed)}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
