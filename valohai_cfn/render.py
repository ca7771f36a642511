"""Deterministic JSON and YAML renderings of the template.

Keys are sorted and nothing depends on dict or set order, so building twice gives the same bytes. Both
renderings are made from one document of plain JSON types, and each costs time linear in its size.
"""

from __future__ import annotations

import functools
import io
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import yaml
from yaml.emitter import ScalarAnalysis
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
# What PyYAML's analyze_scalar looks for, as patterns (see scalar_analysis): the whitespace it counts around an
# indicator, the indicators it checks after the first character, and the characters it writes only escaped.
_WHITESPACE = "\0 \t\r" + _LINE_BREAKS
_FLOW_INDICATOR_AFTER_FIRST = re.compile(r"[,?\[\]{}:]")
_BLOCK_INDICATOR_AFTER_FIRST = re.compile(f":(?:[{_WHITESPACE}]|\\Z)")
_COMMENT_AFTER_FIRST = re.compile(f"[{_WHITESPACE}]#")
_BREAK_SPACE = re.compile(f"[{_LINE_BREAKS}] ")
_SPACE_BREAK = re.compile(f" [{_LINE_BREAKS}]")
_SPECIAL = re.compile("[^\n\x20-\x7e]")
# With allow_unicode, what is not written as it is: the complement of "\n, \x20-\x7e, \x85, \xa0-\ud7ff, \ue000-\ufffd
# but \ufeff, \U00010000-\U0010fffe", written as the few ranges left out (a pattern of the ranges kept takes
# milliseconds to compile, at every start).
_SPECIAL_WITH_UNICODE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufeff\ufffe\uffff\U0010ffff]")


def scalar_analysis(scalar: str, allow_unicode: bool) -> ScalarAnalysis:
    """PyYAML's Emitter.analyze_scalar (yaml/emitter.py, PyYAML 6), the same result from a few pattern searches
    instead of its loop over each character in Python: which styles can write the text. tests/test_render.py
    compares the two on any text."""
    if not scalar:
        return ScalarAnalysis(scalar, True, False, False, True, True, True, False)
    first, rest = scalar[0], scalar[1:]
    first_followed_by_whitespace = len(scalar) == 1 or scalar[1] in _WHITESPACE
    comment = _COMMENT_AFTER_FIRST.search(scalar) is not None  # '#' after whitespace
    flow_indicators = block_indicators = comment or scalar.startswith(("---", "..."))
    if first in "#,[]{}&*!|>'\"%@`" or (first == "-" and first_followed_by_whitespace):
        flow_indicators = block_indicators = True
    elif first in "?:":
        flow_indicators = True
        block_indicators = block_indicators or first_followed_by_whitespace
    flow_indicators = flow_indicators or _FLOW_INDICATOR_AFTER_FIRST.search(rest) is not None
    block_indicators = block_indicators or _BLOCK_INDICATOR_AFTER_FIRST.search(rest) is not None
    line_breaks = _LINE_BREAK.search(scalar) is not None
    special_characters = (_SPECIAL_WITH_UNICODE if allow_unicode else _SPECIAL).search(scalar) is not None
    space_at_ends = first == " " or scalar[-1] == " "
    break_at_ends = first in _LINE_BREAKS or scalar[-1] in _LINE_BREAKS
    break_space = _BREAK_SPACE.search(scalar) is not None
    space_break = _SPACE_BREAK.search(scalar) is not None

    flow_plain = block_plain = not (space_at_ends or break_at_ends or break_space or line_breaks)
    single_quoted = not break_space
    block = scalar[-1] != " "
    if space_break or special_characters:
        flow_plain = block_plain = single_quoted = block = False
    return ScalarAnalysis(
        scalar=scalar,
        empty=False,
        multiline=line_breaks,
        allow_flow_plain=flow_plain and not flow_indicators,
        allow_block_plain=block_plain and not block_indicators,
        allow_single_quoted=single_quoted,
        allow_double_quoted=True,
        allow_block=block,
    )


def _scalar_event(dumper: yaml.SafeDumper, value: Any) -> ScalarEvent:
    """The event PyYAML's serializer makes of a scalar: its representer's tag, text and style, and whether the
    tag is implicit as plain text and as quoted text (what its resolver would read back without a tag)."""
    node = dumper.represent_data(value)
    implicit = (
        node.tag == dumper.resolve(ScalarNode, node.value, (True, False)),
        node.tag == dumper.resolve(ScalarNode, node.value, (False, True)),
    )
    return ScalarEvent(None, node.tag, implicit, node.value, style=node.style)


@dataclass
class ScalarMemo:
    """What PyYAML decides of each distinct scalar, kept for every dumper of a build: its analysis (apart for
    non-ASCII text with and without allow_unicode), its event (apart for multi-line text, which the file writes
    as a literal block and the one-line measure as PyYAML does by default), its style in each context, whether
    it can be a simple key, and the tags as written."""

    analyses: dict[tuple, ScalarAnalysis] = field(default_factory=dict)
    events: dict[Any, ScalarEvent] = field(default_factory=dict)
    styles: dict[tuple, tuple[str, str | None]] = field(default_factory=dict)
    simple_keys: dict[int, bool] = field(default_factory=dict)
    tags: dict[tuple, str] = field(default_factory=dict)


class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper, without aliases (CloudFormation refuses them), remembering what it decides of each
    distinct scalar in `memo`.

    PyYAML's emitter reads each scalar character by character, to analyse it and again to write it, in pure
    Python, and decides its style each time it meets it. The same texts recur (Ref, Fn::Sub, the prefix), and
    most are written as they are."""

    literal_blocks = False  # whether the representer writes multi-line text as a literal block

    def __init__(self, stream: Any, *, memo: ScalarMemo, **options: Any) -> None:
        super().__init__(stream, **options)
        self.memo = memo

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def analyze_scalar(self, scalar: str) -> Any:
        # Only non-ASCII text is analysed differently with and without allow_unicode.
        key = (scalar, bool(self.allow_unicode) or scalar.isascii())
        if key not in self.memo.analyses:
            self.memo.analyses[key] = scalar_analysis(scalar, bool(self.allow_unicode))
        return self.memo.analyses[key]

    def prepare_tag(self, tag: str) -> str:
        key = (tag, tuple(sorted(self.tag_prefixes.items())))
        if key not in self.memo.tags:
            self.memo.tags[key] = super().prepare_tag(tag)
        return self.memo.tags[key]

    def scalar_event(self, value: Any) -> ScalarEvent:
        # By type and text: 1, 1.0 and True are equal keys of a dict, and so are 0.0 and -0.0.
        if type(value) is not str:
            key: Any = (type(value), repr(value))
        else:
            key = (value, self.literal_blocks) if "\n" in value else value
        if key not in self.memo.events:
            self.memo.events[key] = _scalar_event(self, value)
        return self.memo.events[key]

    def simple_key(self, key: Any) -> bool:
        """check_simple_key for a scalar key: its tag and text together under 128 characters, on one line."""
        event = self.scalar_event(key)
        if id(event) not in self.memo.simple_keys:
            self.event, self.analysis, self.prepared_tag, self.prepared_anchor = event, None, None, None
            self.memo.simple_keys[id(event)] = self.check_simple_key()
            self.analysis = self.prepared_tag = None
        return self.memo.simple_keys[id(event)]

    def scalar_style(self, event: ScalarEvent, *, flow: bool, simple_key: bool) -> tuple[str, str | None]:
        """choose_scalar_style in a flow or block context, as a simple key or not; and the scalar as written
        where PyYAML writes it in one piece at any column as long as it fits the line: plain or single-quoted
        text without a line break, untagged (process_tag writes no tag). Line breaks, double quotes, literal
        blocks and tags get None: the emitter's own writers write them."""
        context = (id(event), flow, simple_key, bool(self.allow_unicode) or event.value.isascii())
        if context not in self.memo.styles:
            saved = self.flow_level, self.simple_key_context
            self.flow_level, self.simple_key_context = int(flow), simple_key
            self.event, self.analysis = event, None
            style = self.choose_scalar_style()
            self.analysis = None
            self.flow_level, self.simple_key_context = saved
            written = None
            tagless = (style == "" and event.implicit[0]) or (style != "" and event.implicit[1])
            if tagless and _LINE_BREAK.search(event.value) is None:
                if style == "" and event.value:
                    written = event.value
                elif style == "'":
                    written = "'" + event.value.replace("'", "''") + "'"
            self.memo.styles[context] = (style, written)
        return self.memo.styles[context]

    def fits(self, text: str, width: int) -> bool:
        """Whether PyYAML writes a scalar's `text` (`width` characters as written, a space before it included)
        from the present column without wrapping it: wrapping happens only at a space past the line width."""
        return not self.encoding and (" " not in text or self.column + width <= self.best_width)


class _Measured(NamedTuple):
    """A scalar or collection written in a flow collection: its length alone on one line, its continuation
    lines (a multi-line scalar's), the text when it is written in one piece (see _OneLineLayout.text), and for
    a key whether it is a simple one."""

    length: int
    lines: int
    text: str | None
    simple: bool = False


class _OneLineLayout:
    """Whether a mapping or list is written on one line: a list of scalars always, any other when its one-line
    form — as `yaml.dump(subtree, default_flow_style=True, width=10**6)` writes it alone, without the final
    newline — is at most FLOW_LENGTH characters. Decided when the writer reaches the collection in block
    style, by measuring it bottom up (a collection's length is its children's plus the brackets and
    separators) until the length passes FLOW_LENGTH: then it is written in block style whatever the rest
    holds, so the measure stops. Each collection is measured once (remembered by id for the document's life),
    and only as far as FLOW_LENGTH: the cost is linear in the template's size.

    PyYAML's own emitter chooses and writes each distinct scalar (quoting, escapes, simple or explicit
    keys), so the lengths are exact. In a flow collection PyYAML writes `{a: 1, b: [x, y]}` and
    `{? <long key> : v}`, and a multi-line single-quoted scalar goes on with lines indented two more
    columns for each enclosing collection: a subtree's length is its length alone plus two per such line
    per level it sits below the subtree being measured."""

    def __init__(self, memo: ScalarMemo) -> None:
        self._stream = io.StringIO()
        self._emitter = _Dumper(self._stream, memo=memo, width=_ONE_LINE_WIDTH)
        self._emitter.flow_level = 1
        self._emitter.tag_prefixes = dict(self._emitter.DEFAULT_TAG_PREFIXES)  # as at a document's start
        self._scalars: dict[tuple, _Measured] = {}
        self._measured: dict[int, _Measured | None] = {}

    def one_line(self, data: dict | list) -> bool:
        if isinstance(data, list) and all(not isinstance(item, (dict, list)) for item in data):
            return True
        return self.measure(data) is not None

    def text(self, data: dict | list) -> str | None:
        """The collection as the emitter's flow states write it when every scalar in it is written in one
        piece, untagged, and every key is simple (`{k: v, k2: [a, b]}`: no space after an opening bracket, one
        after a comma or colon), and it is at most FLOW_LENGTH long; None otherwise. Always ASCII: a scalar
        that is not is escaped in the measure, so not written in one piece; so the file, which writes Unicode
        as it is, writes the same text."""
        measured = self.measure(data)
        return None if measured is None else measured.text

    def measure(self, data: dict | list) -> _Measured | None:
        """The collection written alone on one line, or None when it is longer than FLOW_LENGTH."""
        if id(data) not in self._measured:
            self._measured[id(data)] = self._measure(data)
        return self._measured[id(data)]

    def _measure(self, data: dict | list) -> _Measured | None:
        length, lines = 2 + 2 * max(len(data) - 1, 0), 0  # the brackets, and ", " between items
        parts: list[str] | None = []
        if isinstance(data, dict):
            for key, value in sorted(data.items()):  # in the order written, for the text
                written_key = self._scalar(key, key=True)
                written_value = self._item(value)
                if written_value is None:
                    return None
                # `key: value`, or `? key : value` for a key too long or not on one line
                length += written_key.length + 4 * written_key.lines + written_value.length
                length += 2 if written_key.simple else 5
                lines += written_key.lines + written_value.lines
                if length > FLOW_LENGTH:
                    return None
                if parts is not None and written_key.simple and written_key.text and written_value.text:
                    parts.append(f"{written_key.text}: {written_value.text}")
                else:
                    parts = None
            text = None if parts is None else "{" + ", ".join(parts) + "}"
        else:
            for item in data:
                written = self._item(item)
                if written is None:
                    return None
                length += written.length
                lines += written.lines
                if length > FLOW_LENGTH:
                    return None
                if parts is not None and written.text:
                    parts.append(written.text)
                else:
                    parts = None
            text = None if parts is None else "[" + ", ".join(parts) + "]"
        return _Measured(length, lines, text=text)

    def _item(self, data: Any) -> _Measured | None:
        """A key's value or a list's item as written inside the collection measured; None when over
        FLOW_LENGTH (each part only adds to the length of what holds it)."""
        if isinstance(data, (dict, list)):
            measured = self.measure(data)
            if measured is None:
                return None
            # One level deeper than when measured alone: each continuation line takes two more columns.
            return _Measured(measured.length + 2 * measured.lines, measured.lines, text=measured.text)
        written = self._scalar(data, key=False)
        if not written.lines:
            return written
        # A scalar in a top-level flow collection is indented by 4.
        return _Measured(written.length + 4 * written.lines, written.lines, text=None)

    def _scalar(self, value: Any, *, key: bool) -> _Measured:
        """A scalar written inside a flow collection, from column 0."""
        if type(value) is str and len(value) > FLOW_LENGTH:
            # Written at least as long as it is (quotes and escapes only add), so anything holding it is over
            # FLOW_LENGTH whatever its exact length: that is all the layout asks, and it spares reading a
            # script or the app's user data character by character.
            return _Measured(len(value), 0, text=None)
        memo = (value, key) if type(value) is str else (type(value), repr(value), key)
        if memo in self._scalars:
            return self._scalars[memo]
        e = self._emitter
        event = e.scalar_event(value)
        simple = key and e.simple_key(value)
        _style, written = e.scalar_style(event, flow=True, simple_key=simple)
        if written is not None:  # as _write would write it: on one line, in one piece
            result = _Measured(len(written), 0, text=written, simple=simple)
        else:
            text, simple = self._write(event, key, indent=0)
            lines = 0
            if _LINE_BREAK.search(text):
                lines = len(self._write(event, key, indent=1)[0]) - len(text)
            result = _Measured(len(text), lines, text=None, simple=simple)
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


class _TemplateWriter(_Dumper):
    """Writes a document of plain JSON types as PyYAML's emitter does with the layout _OneLineLayout decides as
    it goes: block style for the structure, flow style for small subtrees and scalar lists, literal
    blocks for multi-line text in block style, keys sorted.

    PyYAML makes a node of every value, an event of every node and passes each event through its emitter's
    state machine, all in pure Python: most of a build's time. This walks the document instead, making the
    same calls in the same order as the emitter's expect_* states (block and flow sequences and mappings,
    simple and explicit keys), and writes each scalar with the emitter's own process_tag and process_scalar —
    or, where that cannot wrap or break a line (no line break in it, and it fits before LINE_WIDTH), with its
    remembered style and text; a flow collection whose scalars are all written so, and that fits before
    LINE_WIDTH, is written at once. Same bytes; tests/test_render.py compares it with a plain PyYAML dump."""

    literal_blocks = True

    def __init__(self, stream: Any, **options: Any) -> None:
        super().__init__(stream, **options)
        self.layout = _OneLineLayout(self.memo)

    def write_document(self, document: Any) -> None:
        """The stream of one document: open(), represent() and close() of a PyYAML dumper, as events would."""
        self.tag_prefixes = dict(self.DEFAULT_TAG_PREFIXES)  # expect_document_start; the start is implicit
        self._node(document, root=True)
        self.write_indent()  # expect_document_end
        if self.open_ended:  # expect_document_start at the stream's end
            self.write_indicator("...", True)
            self.write_indent()
        self.flush_stream()

    def _node(
        self, data: Any, *, root: bool = False, sequence: bool = False, mapping: bool = False, simple_key: bool = False
    ) -> None:
        """expect_node: a collection's tag is implicit (never written), and an empty one is written in flow."""
        self.root_context, self.sequence_context, self.mapping_context = root, sequence, mapping
        self.simple_key_context = simple_key
        if isinstance(data, dict):
            if self.flow_level or not data or self.layout.one_line(data):
                self._one_line(data) or self._flow_mapping(data)
            else:
                self._block_mapping(data)
        elif isinstance(data, list):
            if self.flow_level or not data or self.layout.one_line(data):
                self._one_line(data) or self._flow_sequence(data)
            else:
                self._block_sequence(data)
        else:
            self._scalar(data)

    def _one_line(self, data: dict | list) -> bool:
        """A flow collection written at once when the flow states would write what _OneLineLayout.text gives
        and it fits before the line width (the states break a line only past it); False, writing nothing,
        otherwise."""
        text = self.layout.text(data)
        if text is None or self.column + 1 + len(text) > self.best_width:
            return False
        if not self.whitespace:  # write_indicator("{" or "[", True, whitespace=True)
            text = " " + text
        self.column += len(text)
        self.whitespace = self.indention = self.open_ended = False
        self.stream.write(text)
        return True

    def _block_sequence(self, data: list) -> None:
        self.increase_indent(flow=False, indentless=self.mapping_context and not self.indention)
        for item in data:
            self.write_indent()
            self.write_indicator("-", True, indention=True)
            self._node(item, sequence=True)
        self.indent = self.indents.pop()

    def _block_mapping(self, data: dict) -> None:
        self.increase_indent(flow=False)
        for key, value in sorted(data.items()):
            self.write_indent()
            if self.simple_key(key):
                self._node(key, mapping=True, simple_key=True)
                self.write_indicator(":", False)
            else:
                self.write_indicator("?", True, indention=True)
                self._node(key, mapping=True)
                self.write_indent()
                self.write_indicator(":", True, indention=True)
            self._node(value, mapping=True)
        self.indent = self.indents.pop()

    def _flow_sequence(self, data: list) -> None:
        self.write_indicator("[", True, whitespace=True)
        self.flow_level += 1
        self.increase_indent(flow=True)
        for index, item in enumerate(data):
            if index:
                self.write_indicator(",", False)
            if self.column > self.best_width:
                self.write_indent()
            self._node(item, sequence=True)
        self.indent = self.indents.pop()
        self.flow_level -= 1
        self.write_indicator("]", False)

    def _flow_mapping(self, data: dict) -> None:
        self.write_indicator("{", True, whitespace=True)
        self.flow_level += 1
        self.increase_indent(flow=True)
        for index, (key, value) in enumerate(sorted(data.items())):
            if index:
                self.write_indicator(",", False)
            if self.column > self.best_width:
                self.write_indent()
            if self.simple_key(key):
                self._node(key, mapping=True, simple_key=True)
                self.write_indicator(":", False)
            else:
                self.write_indicator("?", True)
                self._node(key, mapping=True)
                if self.column > self.best_width:
                    self.write_indent()
                self.write_indicator(":", True)
            self._node(value, mapping=True)
        self.indent = self.indents.pop()
        self.flow_level -= 1
        self.write_indicator("}", False)

    def _scalar(self, value: Any) -> None:
        """process_tag, then expect_scalar: the emitter's own steps, or their outcome where it is remembered."""
        event = self.scalar_event(value)
        style, written = self.scalar_style(event, flow=bool(self.flow_level), simple_key=self.simple_key_context)
        # Where split is False (a simple key), PyYAML never wraps.
        if written is not None and (self.simple_key_context or self.fits(event.value, len(written) + 1)):
            if style == "" and self.root_context:
                self.open_ended = True  # write_plain's
            if not self.whitespace:
                written = " " + written
            self.whitespace = self.indention = False
            self.open_ended = self.open_ended and style == ""  # write_indicator's, for a quote
            self.column += len(written)
            self.stream.write(written)
            return
        self.event, self.analysis, self.style, self.prepared_tag = event, None, None, None
        self.process_tag()
        self.increase_indent(flow=True)
        self.process_scalar()
        self.indent = self.indents.pop()


_TemplateWriter.add_representer(
    str,
    lambda dumper, data: dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None),
)


def yaml_text(document: dict[str, Any], memo: ScalarMemo | None = None) -> str:
    """The YAML rendering of a document of plain JSON types, as `template_dict` returns (str keys; str, int,
    float, bool, None, list and dict values; nothing else is supported), in one pass that measures each
    collection it reaches in block style to decide whether it goes on one line. `memo`: what PyYAML decided of
    the scalars of documents rendered before (a build's templates share most of their texts).

    Follows PyYAML 6's emitter (yaml/emitter.py); the same bytes as `yaml.dump(document, width=LINE_WIDTH,
    allow_unicode=True)` with that layout, which tests/yaml_reference.py keeps as the oracle."""
    memo = ScalarMemo() if memo is None else memo
    stream = io.StringIO()
    writer = _TemplateWriter(stream, memo=memo, width=LINE_WIDTH, allow_unicode=True)
    try:
        writer.write_document(document)
    finally:
        writer.dispose()
    return stream.getvalue()


def render_yaml(t: Template) -> str:
    # Long form (Fn::GetAtt: [A, B.C]) rather than !GetAtt A.B.C, which some tools misread; keys sorted.
    return yaml_text(template_dict(t))


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
    template (the pool's) as processed for those parameter values. Raises OSError naming the file it could not
    write (those before it are written)."""
    # The templates share most of their texts: what PyYAML decides of each is decided once.
    renderers = {"json": json_text, "yaml": functools.partial(yaml_text, memo=ScalarMemo())}
    document = template_dict(t)
    files = {f"{TEMPLATE_NAME}.{fmt}": renderers[fmt](document) for fmt in formats}
    files[STACK_POLICY_NAME] = stack_policy(document)
    if processed_for is not None:
        files[f"{TEMPLATE_NAME}.processed.json"] = render_processed(t, processed_for)
    if pool is not None:
        pool_document = template_dict(pool)
        files.update({f"{POOL_TEMPLATE_NAME}.{fmt}": renderers[fmt](pool_document) for fmt in formats})
        if pool_processed_for is not None:
            files[f"{POOL_TEMPLATE_NAME}.processed.json"] = render_processed(pool, pool_processed_for)
    if ssh is not None:
        ssh_document = template_dict(ssh)
        files.update({f"{SSH_TEMPLATE_NAME}.{fmt}": renderers[fmt](ssh_document) for fmt in formats})
    written = []
    for name, text in files.items():
        path = output_dir / name
        try:
            write_atomically(path, text)
        except OSError as e:  # named by the file it was writing, not a temporary one or the directory
            raise OSError(e.errno, e.strerror, str(path)) from e
        written.append(path)
    return written
