"""Deterministic JSON and YAML renderings of the template.

Keys are sorted and nothing depends on dict or set order, so building twice gives the same bytes. Both
renderings are made from one document of plain JSON types, and each costs time linear in its size.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from yaml.events import ScalarEvent
from yaml.nodes import ScalarNode

from valohai_cfn.files import write_atomically
from valohai_cfn.language_extensions import expand
from valohai_cfn.stack.policy import stack_policy

if TYPE_CHECKING:  # troposphere only for the type: commands that render nothing do not import it
    from troposphere import Template

TEMPLATE_NAME = "valohai-self-hosted"
# The second template: workers in another account or region (SPEC "Worker pools").
POOL_TEMPLATE_NAME = "valohai-worker-pool"
# The third: SSH to the app instance, apart so that the installation fits in a TemplateBody (DESIGN.md "Size").
SSH_TEMPLATE_NAME = "valohai-ssh"
FORMATS = ("json", "yaml")
STACK_POLICY_NAME = "stack-policy.json"
# What CreateStack/CreateChangeSet accept as TemplateBody; larger templates must go through S3.
TEMPLATE_BODY_LIMIT = 51_200


def template_dict(t: Template) -> dict[str, Any]:
    """The template as plain JSON types, the one form both renderings are made from."""
    return json.loads(json.dumps(t.to_dict()))


def json_text(document: dict[str, Any]) -> str:
    # Minified: the JSON is for machines, and only so does it stay under the TemplateBody limit, so that
    # `aws cloudformation deploy --template-file` works without an S3 bucket. The YAML is the one to read.
    return json.dumps(document, separators=(",", ":"), sort_keys=True, ensure_ascii=False) + "\n"


def render_json(t: Template) -> str:
    return json_text(template_dict(t))


# A mapping or list whose one-line form is at most this long is written on one line, wrapped at LINE_WIDTH
# ({Ref: X}, [A, B.C], the tags of a resource): the YAML stays readable and under the TemplateBody limit.
# A list of scalars is written on one line whatever its length.
FLOW_LENGTH = 300
LINE_WIDTH = 1000
# The one-line form is measured as PyYAML writes a subtree alone in flow style with this width (so that
# nothing wraps) and its defaults otherwise: escaped non-ASCII text, sorted keys.
_ONE_LINE_WIDTH = 10**6
_LINE_BREAKS = "\n\x85\u2028\u2029"  # what PyYAML's emitter takes for a line break
_LINE_BREAK = re.compile(f"[{_LINE_BREAKS}]")


class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper, without aliases (CloudFormation refuses them), remembering its scalar analyses."""

    def __init__(self, stream: Any, *, analyses: dict, **options: Any) -> None:
        super().__init__(stream, **options)
        self._analyses = analyses
        self._tags: dict[tuple, str] = {}

    def ignore_aliases(self, data: Any) -> bool:
        return True

    # PyYAML's emitter reads each scalar character by character, to analyse it and again to write it, in pure
    # Python: most of a dump's time. The same texts recur (Ref, Fn::Sub, the prefix), and most are written
    # as they are. These overrides give the same results, remembered or without the loop where they can.

    def analyze_scalar(self, scalar: str) -> Any:
        # Only non-ASCII text is analysed differently with and without allow_unicode.
        key = (scalar, bool(self.allow_unicode) or scalar.isascii())
        if key not in self._analyses:
            self._analyses[key] = super().analyze_scalar(scalar)
        return self._analyses[key]

    def prepare_tag(self, tag: str) -> str:
        key = (tag, tuple(sorted(self.tag_prefixes.items())))
        if key not in self._tags:
            self._tags[key] = super().prepare_tag(tag)
        return self._tags[key]

    def _unwrapped(self, text: str, split: bool, width: int) -> bool:
        """Whether PyYAML writes `text` as it is: no line break in it, and no space it could wrap at (wrapping
        happens only at a space past the line width, and only where `split`)."""
        return (
            not self.encoding
            and _LINE_BREAK.search(text) is None
            and (not split or " " not in text or self.column + width <= self.best_width)
        )

    def write_plain(self, text: str, split: bool = True) -> None:
        if not text or not self._unwrapped(text, split, 1 + len(text)):
            return super().write_plain(text, split)
        if self.root_context:
            self.open_ended = True
        if not self.whitespace:
            text = " " + text
        self.whitespace = self.indention = False
        self.column += len(text)
        self.stream.write(text)

    def write_single_quoted(self, text: str, split: bool = True) -> None:
        quoted = text.replace("'", "''")
        if not self._unwrapped(text, split, 3 + len(quoted)):
            return super().write_single_quoted(text, split)
        self.write_indicator("'", True)
        self.column += len(quoted)
        self.stream.write(quoted)
        self.write_indicator("'", False)


class _OneLineLengths:
    """How long each mapping and list of a document is on one line, as `yaml.dump(subtree,
    default_flow_style=True, width=10**6)` writes it alone (without the final newline), for every subtree in
    one pass, bottom up: a collection's length is its children's plus the brackets and separators. Exact up to
    FLOW_LENGTH; above it, a length may be a lower bound (a scalar longer than FLOW_LENGTH is not read).

    PyYAML's own emitter chooses and writes each distinct scalar (quoting, escapes, simple or explicit
    keys), so the lengths are exact. In a flow collection PyYAML writes `{a: 1, b: [x, y]}` and
    `{? <long key> : v}`, and a multi-line single-quoted scalar goes on with lines indented two more
    columns for each enclosing collection: a subtree's length is its length alone plus two per such line
    per level it sits below the subtree being measured."""

    def __init__(self, analyses: dict) -> None:
        self._stream = io.StringIO()
        self._emitter = _Dumper(self._stream, analyses=analyses, width=_ONE_LINE_WIDTH)
        self._emitter.flow_level = 1
        self._emitter.tag_prefixes = dict(self._emitter.DEFAULT_TAG_PREFIXES)  # as at a document's start
        self._scalars: dict[tuple[str, bool], tuple[int, int, bool]] = {}

    def measure(self, data: dict | list, found: dict[int, int]) -> tuple[int, int]:
        """(length of a mapping or list written alone on one line, its indented continuation lines); records
        the length of it and of each mapping and list in it in `found`, by id."""
        length, lines = 2 + 2 * max(len(data) - 1, 0), 0  # the brackets, and ", " between items
        if isinstance(data, dict):
            for key, value in data.items():
                key_length, key_lines, simple = self._scalar(key, key=True)
                value_length, value_lines = self._item(value, found)
                # `key: value`, or `? key : value` for a key too long or not on one line
                length += key_length + 4 * key_lines + value_length + (2 if simple else 5)
                lines += key_lines + value_lines
        else:
            for item in data:
                item_length, item_lines = self._item(item, found)
                length += item_length
                lines += item_lines
        found[id(data)] = length
        return length, lines

    def _item(self, data: Any, found: dict[int, int]) -> tuple[int, int]:
        """Length and continuation lines of a key's value or a list's item, inside the collection measured."""
        if isinstance(data, (dict, list)):
            length, lines = self.measure(data, found)
            return length + 2 * lines, lines  # one level deeper than when measured alone
        length, lines, _ = self._scalar(data, key=False)
        return length + 4 * lines, lines  # a scalar in a top-level flow collection is indented by 4

    def _scalar(self, value: Any, *, key: bool) -> tuple[int, int, bool]:
        """(length at indent 0, lines that take the indent, whether written as a simple key) of a scalar."""
        if type(value) is str and len(value) > FLOW_LENGTH:
            # Written at least as long as it is (quotes and escapes only add), so anything holding it is over
            # FLOW_LENGTH whatever its exact length: that is all the layout asks, and it spares reading a
            # script or the app's user data character by character.
            return len(value), 0, False
        memo = (value, key) if type(value) is str else None
        if memo is not None and memo in self._scalars:
            return self._scalars[memo]
        e = self._emitter
        node = e.represent_data(value)
        implicit = (
            node.tag == e.resolve(ScalarNode, node.value, (True, False)),
            node.tag == e.resolve(ScalarNode, node.value, (False, True)),
        )
        event = ScalarEvent(None, node.tag, implicit, node.value, style=node.style)
        written, simple = self._write(event, key, indent=0)
        lines = 0
        if any(c in written for c in _LINE_BREAKS):
            lines = len(self._write(event, key, indent=1)[0]) - len(written)
        result = (len(written), lines, simple)
        if memo is not None:
            self._scalars[memo] = result
        return result

    def _write(self, event: ScalarEvent, key: bool, indent: int) -> tuple[str, bool]:
        """The scalar as PyYAML's emitter writes it inside a flow collection (the same calls, in the same
        order, as its expect_flow_mapping_key / expect_flow_sequence_item and expect_node)."""
        e = self._emitter
        self._stream.seek(0)
        self._stream.truncate()
        e.event, e.events = event, []
        e.analysis = e.style = e.prepared_tag = e.prepared_anchor = None
        e.column, e.whitespace, e.indention = 1, True, False  # just after the opening bracket
        simple = key and e.check_simple_key()
        e.root_context, e.sequence_context, e.mapping_context, e.simple_key_context = False, not key, key, simple
        e.process_anchor("&")
        e.process_tag()
        e.indent = indent
        e.process_scalar()
        return self._stream.getvalue(), simple


def flow_styles(document: Any, analyses: dict | None = None) -> dict[int, bool]:
    """Whether each mapping and list of the document (by id) is written on one line in the YAML: a list of
    scalars always, any other when its one-line form is at most FLOW_LENGTH characters. `analyses`: PyYAML's
    scalar analyses, to share with the dump that follows."""
    lengths: dict[int, int] = {}
    styles: dict[int, bool] = {}

    def visit(data: Any) -> None:
        if isinstance(data, (dict, list)):
            values = data.values() if isinstance(data, dict) else data
            scalars = isinstance(data, list) and all(not isinstance(v, (dict, list)) for v in values)
            styles[id(data)] = scalars or lengths[id(data)] <= FLOW_LENGTH
            for value in values:
                visit(value)

    if isinstance(document, (dict, list)):
        _OneLineLengths({} if analyses is None else analyses).measure(document, lengths)
    visit(document)
    return styles


class _TemplateDumper(_Dumper):
    """Block style for the structure, flow style for small subtrees and scalar lists (decided beforehand, by
    `flow_styles`), literal blocks for multi-line text in block style, keys sorted."""

    def __init__(self, stream: Any, *, flow: dict[int, bool], **options: Any) -> None:
        super().__init__(stream, **options)
        self.flow = flow


def _represent_dict(dumper: _TemplateDumper, data: dict) -> yaml.Node:
    return dumper.represent_mapping("tag:yaml.org,2002:map", sorted(data.items()), flow_style=dumper.flow[id(data)])


def _represent_list(dumper: _TemplateDumper, data: list) -> yaml.Node:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=dumper.flow[id(data)])


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None)


_TemplateDumper.add_representer(dict, _represent_dict)
_TemplateDumper.add_representer(list, _represent_list)
_TemplateDumper.add_representer(str, _represent_str)


def yaml_text(document: dict[str, Any]) -> str:
    """The YAML rendering of a document of plain JSON types, as `template_dict` returns (str keys; str, int,
    float, bool, None, list and dict values; nothing else is supported): one pass to decide the layout, then
    one PyYAML dump."""
    stream, analyses = io.StringIO(), {}
    flow = flow_styles(document, analyses)
    dumper = _TemplateDumper(
        stream, flow=flow, analyses=analyses, width=LINE_WIDTH, allow_unicode=True, sort_keys=False
    )
    try:
        dumper.open()
        dumper.represent(document)
        dumper.close()
    finally:
        dumper.dispose()
    return stream.getvalue()


def render_yaml(t: Template) -> str:
    # Long form (Fn::GetAtt: [A, B.C]) rather than !GetAtt A.B.C, which some tools misread; keys sorted.
    return yaml_text(template_dict(t))


RENDERERS = {"json": json_text, "yaml": yaml_text}


def render_processed(t: Template, parameters: dict[str, str]) -> str:
    """The template as CloudFormation processes it for these parameter values: the transform's loops expanded
    (one worker group per type...). For scanners and reviewers that do not run the transform themselves."""
    return json.dumps(expand(template_dict(t), parameters), indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def write_templates(
    t: Template,
    output_dir: Path,
    formats: tuple[str, ...] = FORMATS,
    processed_for: dict[str, str] | None = None,
    *,
    pool: Template | None = None,
    pool_processed_for: dict[str, str] | None = None,
    ssh: Template | None = None,
) -> list[Path]:
    """Write the template in each format, and its stack policy; with `pool` (`ssh`), the worker pool's (the SSH)
    template in each format too; returns the paths written. With `processed_for` (`pool_processed_for`), also the
    template (the pool's) as processed for those parameter values."""
    document = template_dict(t)
    files = {f"{TEMPLATE_NAME}.{fmt}": RENDERERS[fmt](document) for fmt in formats}
    files[STACK_POLICY_NAME] = stack_policy(document)
    if processed_for is not None:
        files[f"{TEMPLATE_NAME}.processed.json"] = render_processed(t, processed_for)
    if pool is not None:
        pool_document = template_dict(pool)
        files.update({f"{POOL_TEMPLATE_NAME}.{fmt}": RENDERERS[fmt](pool_document) for fmt in formats})
        if pool_processed_for is not None:
            files[f"{POOL_TEMPLATE_NAME}.processed.json"] = render_processed(pool, pool_processed_for)
    if ssh is not None:
        ssh_document = template_dict(ssh)
        files.update({f"{SSH_TEMPLATE_NAME}.{fmt}": RENDERERS[fmt](ssh_document) for fmt in formats})
    written = []
    for name, text in files.items():
        path = output_dir / name
        write_atomically(path, text)
        written.append(path)
    return written
