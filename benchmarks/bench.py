"""`make bench`: how fast valohai-cfn is, in fresh processes.

1. `valohai-cfn build` (both formats): wall time and peak memory. Targets on the project's 2-core
   machine: under 1 s and 150 MiB. For scale, the original CDK app's `cdk synth` of the same stack
   takes about 9 s and 530 MiB there.
2. `make template` on a fresh clone: a new virtual environment, the package's own dependencies only (the
   test tools come with `make test`), then the build. Target: under 60 s from the package index.
3. A full deploy of the template to the local AWS: `valohai-cfn deploy` next to the same end state by
   hand with awscli on the same server and template (`aws cloudformation deploy`, then termination
   protection and the stack policy). Ours must take less time; awscli checks nothing before deploying, so
   the like-for-like run skips our preflight, and the default deploy (preflight included) is reported
   beside it.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from valohai_cfn.params import dump_parameters

RUNS = 5
DEPLOY_ROUNDS = 5
WALL_TARGET_S = 1.0
PEAK_TARGET_MIB = 150.0
FIRST_TEMPLATE_TARGET_S = 60.0
BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parent.parent
STACK_POLICY = REPO / "templates" / "stack-policy.json"


def timed(command: list[str], env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall seconds, peak resident MiB) of one command in a new process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"failed: {' '.join(command)}\n{process.stderr.read().decode()}")
    return wall, usage.ru_maxrss / 1024  # KiB on Linux


def bench_build() -> bool:
    output_dir = tempfile.mkdtemp(prefix="valohai-cfn-bench-")
    command = [str(BIN / "valohai-cfn"), "build", "--format", "all", "--output-dir", output_dir]
    try:
        timed(command)  # warm the file-system cache and .pyc files
        runs = [timed(command) for _ in range(RUNS)]
    finally:
        shutil.rmtree(output_dir)
    wall = statistics.median(w for w, _ in runs)
    peak = max(p for _, p in runs)
    ok = wall < WALL_TARGET_S and peak < PEAK_TARGET_MIB
    print(
        f"build:  median wall {wall:.3f} s (target < {WALL_TARGET_S} s), peak RSS {peak:.1f} MiB "
        f"(target < {PEAK_TARGET_MIB:.0f} MiB): {'ok' if ok else 'OVER TARGET'}"
    )
    return ok


def bench_first_template() -> bool:
    """`make template` on a fresh clone of the committed tree, as a new user's first command."""
    with tempfile.TemporaryDirectory(prefix="valohai-cfn-clone-") as tmp:
        clone = Path(tmp) / "clone"
        subprocess.run(["git", "clone", "--quiet", "--no-hardlinks", str(REPO), str(clone)], check=True)
        wall, _ = timed(["make", "-C", str(clone), "template"])
        listed = subprocess.run(
            [str(clone / ".venv" / "bin" / "python"), "-m", "pip", "list", "--format", "freeze"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    ok = wall < FIRST_TEMPLATE_TARGET_S
    print(
        f"first `make template` on a fresh clone: {wall:.1f} s with {len(listed)} packages installed "
        f"(target < {FIRST_TEMPLATE_TARGET_S:.0f} s): {'ok' if ok else 'OVER TARGET'}"
    )
    return ok


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


def bench_deploy() -> bool:
    """Like for like, `valohai-cfn deploy --skip-preflight` against the same end state by hand with awscli
    (`aws cloudformation deploy`, which checks nothing first, then termination protection and the stack
    policy): ours must be faster. The default deploy, preflight included, is reported beside them."""
    import boto3

    from valohai_cfn.local_aws import LocalAws, create_demo_network

    aws = aws_cli()
    if aws is None:
        print("deploy: skipped: no `aws` command (make bench installs one in .venv-awscli)")
        return True
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
    ok = median["ours"] < median["awscli"]
    print(
        f"deploy: valohai-cfn deploy --skip-preflight {median['ours']:.2f} s, by hand with awscli (deploy, "
        f"termination protection, stack policy) {median['awscli']:.2f} s (median of {DEPLOY_ROUNDS}, local AWS): "
        f"{'ok' if ok else 'SLOWER THAN AWSCLI'}"
    )
    print(f"        valohai-cfn deploy with preflight (15 checks) {median['ours+preflight']:.2f} s")
    return ok


def main() -> int:
    results = [bench_build(), bench_first_template(), bench_deploy()]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
