"""The previous YAML renderer (valohai_cfn/render.py before issue 21), kept ONLY as the oracle the tests
compare the new renderer with: not used by the product, do not change it.

It decided each mapping's and list's layout by dumping the subtree again with PyYAML, so its cost grew
with the size of the template times its depth (about 890 nested dumps per build, 0.7 s). The new renderer
must give the same bytes for any template.
"""

from __future__ import annotations

import json
from typing import Any

import yaml

FLOW_LENGTH = 300
LINE_WIDTH = 1000


class _TemplateDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _one_line_length(data: Any) -> int:
    return len(yaml.dump(data, Dumper=_FlowDumper, width=10**6).strip())


class _FlowDumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _flow(data: dict | list) -> bool:
    values = data.values() if isinstance(data, dict) else data
    if "\n" in json.dumps(data):  # multi-line text keeps its literal block
        return False
    scalars = all(not isinstance(v, (dict, list)) for v in values)
    return (scalars and isinstance(data, list)) or _one_line_length(data) <= FLOW_LENGTH


def _represent_dict(dumper: yaml.SafeDumper, data: dict) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", sorted(data.items()), flow_style=_flow(data))


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=_flow(data))


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)


_TemplateDumper.add_representer(dict, _represent_dict)
_TemplateDumper.add_representer(list, _represent_list)
_TemplateDumper.add_representer(str, _represent_str)
_FlowDumper.add_representer(
    dict, lambda d, data: d.represent_mapping("tag:yaml.org,2002:map", sorted(data.items()), flow_style=True)
)
_FlowDumper.add_representer(list, lambda d, data: d.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True))


def reference_yaml(document: dict[str, Any]) -> str:
    """The previous `render_yaml`, taking the template as plain JSON types (what `template_dict` returns)."""
    return yaml.dump(document, Dumper=_TemplateDumper, width=LINE_WIDTH, allow_unicode=True, sort_keys=False)
