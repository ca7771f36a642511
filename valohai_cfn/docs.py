"""Sections of README.md generated from the built template, so the documentation cannot drift from it.

A generated section sits between `<!-- begin:NAME -->` and `<!-- end:NAME -->`; `make docs` rewrites it
and a test fails when it is stale.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from valohai_cfn import diagram
from valohai_cfn.files import write_atomically


def parameter_table(template: dict) -> str:
    """A Markdown table of the parameters, in the console's group order."""
    interface = template["Metadata"]["AWS::CloudFormation::Interface"]
    rows = ["| Parameter | Group | Type | Default | What it is |", "|---|---|---|---|---|"]
    for group in interface["ParameterGroups"]:
        for name in group["Parameters"]:
            parameter = template["Parameters"][name]
            default = parameter.get("Default")
            shown = "required" if default is None else "(empty)" if default == "" else f"`{default}`"
            label, kind, description = group["Label"]["default"], parameter["Type"], parameter["Description"]
            rows.append(f"| `{name}` | {label} | {kind} | {shown} | {description} |")
    return "\n".join(rows)


def replace_section(text: str, name: str, content: str) -> str:
    pattern = re.compile(rf"(<!-- begin:{name} -->\n).*?(<!-- end:{name} -->)", re.DOTALL)
    if not pattern.search(text):
        raise ValueError(f"README has no section {name!r}")
    return pattern.sub(lambda m: m.group(1) + content + "\n" + m.group(2), text)


def checkov_skip_table(template: dict) -> str:
    """Every checkov check skipped in the template (the secrets' loop expanded), with the reason SCAN_SKIPS gives."""
    from valohai_cfn.stack.context import SCAN_SKIPS

    rows = ["| Resource | Check | Why it does not fit |", "|---|---|---|"]
    for name, resource in sorted(diagram.resources_to_draw(template).items()):
        for skip in resource[0].get("Metadata", {}).get("checkov", {}).get("skip", []):
            rows.append(f"| `{name}` | {skip['id']} | {SCAN_SKIPS[skip['id']]} |")
    return "\n".join(rows)


def preflight_table(_template: dict) -> str:
    """A Markdown table of preflight's checks, in the order they run: each check's docstring says what it catches."""
    from valohai_cfn.preflight import CHECKS

    rows = ["| Check | What it catches |", "|---|---|"]
    for check in CHECKS:
        title = check.__name__.removeprefix("check_").replace("_", " ")
        rows.append(f"| {title} | {' '.join((check.__doc__ or '').split())} |")
    return "\n".join(rows)


SECTIONS: dict[str, Callable[[dict], str]] = {
    "parameters": parameter_table,
    "diagram": diagram.readme_section,
    "checkov-skips": checkov_skip_table,
    "preflight": preflight_table,
}
# The worker pool template's (README: Worker pools).
POOL_SECTIONS: dict[str, Callable[[dict], str]] = {
    "pool-parameters": parameter_table,
    "pool-diagram": diagram.readme_section,
}
# The SSH template's (README: SSH to the app instance).
SSH_SECTIONS: dict[str, Callable[[dict], str]] = {"ssh-parameters": parameter_table}


def render_readme(readme: str, template: dict, pool: dict | None = None, ssh: dict | None = None) -> str:
    """The README with the sections of the installation's template, and of the pool's and the SSH template's
    when given."""
    for name, generate in SECTIONS.items():
        readme = replace_section(readme, name, generate(template))
    for name, generate in POOL_SECTIONS.items() if pool is not None else ():
        readme = replace_section(readme, name, generate(pool))
    for name, generate in SSH_SECTIONS.items() if ssh is not None else ():
        readme = replace_section(readme, name, generate(ssh))
    return readme


def update_readme(path: Path, template: dict, pool: dict | None = None, ssh: dict | None = None) -> bool:
    """Rewrite the generated sections; True when the file changed."""
    old = path.read_text(encoding="utf-8")
    new = render_readme(old, template, pool, ssh)
    if new != old:
        write_atomically(path, new)
    return new != old


def main() -> None:
    import json

    from valohai_cfn.render import render_json
    from valohai_cfn.template import build_pool_template, build_ssh_template, build_template

    readme = Path("README.md")
    pool = json.loads(render_json(build_pool_template()))
    ssh = json.loads(render_json(build_ssh_template()))
    changed = update_readme(readme, json.loads(render_json(build_template())), pool, ssh)
    print(f"{readme}: {'updated' if changed else 'up to date'}")


if __name__ == "__main__":
    main()
