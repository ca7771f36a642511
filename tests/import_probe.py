"""Run by tests/test_imports.py in a process of its own: valohai-cfn commands, in-process one after another,
and which of the slow-to-import libraries had been imported after each. It imports nothing heavy itself
(not pytest, not the tests' helpers), so what it reports is the command line's doing.

    python tests/import_probe.py '[["status", "stack"], ["--help"]]'  ->  JSON on stdout
"""

from __future__ import annotations

import json
import sys

HEAVY = ("troposphere", "cfn_flip", "cfnlint")


def imported_heavy() -> list[str]:
    return sorted({name.split(".")[0] for name in sys.modules} & set(HEAVY))


def main() -> None:
    from click.testing import CliRunner

    from valohai_cfn.cli import cli

    report = [{"args": ["(import valohai_cfn.cli)"], "exit_code": 0, "output": "", "heavy": imported_heavy()}]
    for args in json.loads(sys.argv[1]):
        result = CliRunner().invoke(cli, args)
        report.append({"args": args, "exit_code": result.exit_code, "output": result.output, "heavy": imported_heavy()})
    print(json.dumps(report))


if __name__ == "__main__":
    main()
