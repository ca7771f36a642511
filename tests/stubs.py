"""Stub commands for running the boot scripts for real: each records its call and answers from rules.

Each call also records the content of the `watched` files at that moment, so a test can tell what was
written before which call. A rule is {"match": regex on "<command> <args…>", "stdout": …, "stderr": …, "exit": …, "times": n}: the
first rule that matches (and has uses left) answers; no match is a silent success. `runuser` runs
what follows `--`; `python3 -m prep` is recorded (with a copy of its config file: the last one, and each run's), any other
python3 is the real one. Each call also records the AWS credentials and region it was made with.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

STUBBED = ("aws", "docker", "systemctl", "curl", "runuser", "chown", "sleep", "snap", "env", "python3")

STUB = r"""#!{python} -S
import json, os, re, shutil, sys
name, args = os.path.basename(sys.argv[0]), sys.argv[1:]
state = os.environ["STUB_STATE"]
files = {{}}
for path in filter(None, os.environ.get("STUB_WATCH", "").split(os.pathsep)):
    files[path] = open(path).read() if os.path.exists(path) else None
env = {{k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION")}}
with open(os.path.join(state, "calls.jsonl"), "a") as log:
    call = {{"cmd": name, "args": args, "files": files, "env": env, "region": env["AWS_DEFAULT_REGION"]}}
    log.write(json.dumps(call) + "\n")
if name == "runuser":
    command = args[args.index("--") + 1:]
    os.execvp(command[0], command)
if name == "python3":
    if args[:2] != ["-m", "prep"]:
        os.execv({python!r}, [{python!r}, *args])
    shutil.copy(args[args.index("--config-yaml") + 1], os.path.join(state, "prep-config.yaml"))
    runs = len([f for f in os.listdir(state) if f.startswith("prep-run-")])
    shutil.copy(args[args.index("--config-yaml") + 1], os.path.join(state, f"prep-run-{{runs + 1}}.yaml"))
line = " ".join([name, *args])
with open(os.path.join(state, "rules.json")) as f:
    rules = json.load(f)
for i, rule in enumerate(rules):
    if not re.search(rule["match"], line):
        continue
    used_file = os.path.join(state, f"used-{{i}}")
    used = int(open(used_file).read()) if os.path.exists(used_file) else 0
    if rule.get("times") is not None and used >= rule["times"]:
        continue
    with open(used_file, "w") as f:
        f.write(str(used + 1))
    sys.stdout.write(rule.get("stdout", ""))
    sys.stderr.write(rule.get("stderr", ""))
    sys.exit(rule.get("exit", 0))
"""


@dataclass
class Stubs:
    """A bin directory of stubs, a temporary root for the files the script writes, and the record."""

    directory: Path
    rules: list[dict] = field(default_factory=list)
    # Files under the root whose content each call records, as it is when the call is made.
    watched: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.bin = self.directory / "bin"
        self.state = self.directory / "state"
        self.root = self.directory / "root"
        for d in (self.bin, self.state):
            d.mkdir(parents=True, exist_ok=True)
        for d in ("etc/systemd/system", "usr/local/sbin", "home/ubuntu"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        script = STUB.format(python=sys.executable)
        for name in STUBBED:
            path = self.bin / name
            path.write_text(script)
            path.chmod(0o755)

    def answer(self, match: str, stdout: str = "", *, exit: int = 0, stderr: str = "", times: int | None = None):
        """Add a rule; rules added earlier win."""
        self.rules.append({"match": match, "stdout": stdout, "exit": exit, "stderr": stderr, "times": times})

    def run(self, script: Path, *args: str) -> subprocess.CompletedProcess:
        (self.state / "rules.json").write_text(json.dumps(self.rules))
        for used in self.state.glob("used-*"):
            used.unlink()
        env = {
            "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
            "STUB_STATE": str(self.state),
            "VALOHAI_CFN_ROOT": str(self.root),
            "HOME": str(self.directory),
            "STUB_WATCH": os.pathsep.join(str(self.root / path) for path in self.watched),
        }
        return subprocess.run(["bash", str(script), *args], env=env, capture_output=True, text=True, timeout=120)

    def calls(self, command: str | None = None) -> list[list[str]]:
        log = self.state / "calls.jsonl"
        entries = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        return [[e["cmd"], *e["args"]] for e in entries if command is None or e["cmd"] == command]

    def env_of(self, command: str) -> list[dict[str, str | None]]:
        """The AWS environment (access key, session token, region) of each call of `command`, in order."""
        log = self.state / "calls.jsonl"
        entries = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        return [e["env"] for e in entries if e["cmd"] == command]

    def prep_runs(self) -> list[str]:
        """The config of each `python3 -m prep` run, in order."""
        runs = sorted(self.state.glob("prep-run-*.yaml"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
        return [p.read_text() for p in runs]

    def files_at(self, call: list[str]) -> dict[str, str | None]:
        """The watched files (by their path under the root) as they were when `call` was first made; None
        for one that did not exist."""
        log = self.state / "calls.jsonl"
        for entry in (json.loads(line) for line in log.read_text().splitlines()):
            if [entry["cmd"], *entry["args"]] == call:
                return {str(Path(path).relative_to(self.root)): text for path, text in entry["files"].items()}
        raise AssertionError(f"{call} was not called")

    def region_at(self, call: list[str]) -> str | None:
        """AWS_DEFAULT_REGION as `call` was first made with it (None: not set)."""
        log = self.state / "calls.jsonl"
        for entry in (json.loads(line) for line in log.read_text().splitlines()):
            if [entry["cmd"], *entry["args"]] == call:
                return entry["region"]
        raise AssertionError(f"{call} was not called")

    def forget_calls(self) -> None:
        (self.state / "calls.jsonl").unlink(missing_ok=True)
        for run in self.state.glob("prep-run-*.yaml"):
            run.unlink()
