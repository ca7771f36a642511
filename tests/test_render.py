"""The YAML renderer: the same bytes as the previous renderer (tests/yaml_reference.py) for any template, the
real one and made-up ones, at a cost that does not grow with the template's depth."""

from __future__ import annotations

import io

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from yaml_reference import reference_yaml

from valohai_cfn import render
from valohai_cfn.render import FLOW_LENGTH, LINE_WIDTH, yaml_text


def test_the_built_template_renders_as_the_previous_renderer_did(raw_template):
    assert yaml_text(raw_template) == reference_yaml(raw_template)


# Text that makes PyYAML quote, escape, fold or break: indicators, quotes, spaces at the ends, line breaks of
# every kind, tabs, non-ASCII (escaped in the one-line measure, written as is in the file), a byte-order mark.
TRICKY = "a b:#-?,[]{}&*!|>'\"%@`\n\t\r\x85\u2028\u2029\ufeff\x00é日😀~."
TRICKY_KEYS = [
    "",
    "Ref",
    "Fn::GetAtt",
    "123",
    "1.5",
    "true",
    "null",
    "~",
    "- x",
    "? x",
    "a: b",
    "#c",
    " lead",
    "trail ",
    "k" * 122,  # with the tag's 5 characters, the longest simple key
    "k" * 123,  # the shortest written as an explicit `? key`
    "two\nlines",
    "ünï",
]
LONG_WORDS = " ".join(["word"] * 260)  # wraps at LINE_WIDTH


def _document(**top: object) -> dict:
    return {"AWSTemplateFormatVersion": "2010-09-09", **top}


EXAMPLES = {
    "nested lists": _document(Resources={"A": {"Properties": {"L": [[1, [2, [3, []]]], [], [{}], [[{"x": []}]]]}}}),
    "empty maps and lists": _document(Metadata={}, Outputs={"O": {"Value": []}}, Resources={"A": {}}),
    "long strings": _document(Description="x" * 5000, Resources={"A": {"Properties": {"S": LONG_WORDS}}}),
    "a long list of scalars wraps": _document(
        Resources={"A": {"Properties": {"L": [f"item {i}" for i in range(400)]}}}
    ),
    "long single-quoted text": _document(Resources={"A": {"Properties": {"S": "'" + LONG_WORDS + ":"}}}),
    "multi-line strings": _document(
        Resources={
            "A": {"Properties": {"Script": "#!/bin/bash\nset -eu\n\n  indented\ntrailing\n\n", "Short": "a\nb"}},
            "B": {"Properties": {"Sub": {"Fn::Sub": "x\ny"}, "List": ["a\nb", "c"], "Keep": "x\n\n\n"}},
        }
    ),
    "unicode": _document(Description="Ääkköset 日本語 😀", Resources={"A": {"Properties": {"S": ["é", "\ufeffbom"]}}}),
    "numbers, bools and null": _document(
        Resources={"A": {"Properties": {"I": 1, "F": 1.5, "E": 1e-07, "Big": 10**30, "B": True, "N": None}}}
    ),
    "keys needing quotes": _document(Resources={"A": {"Properties": {k: k for k in TRICKY_KEYS}}}),
    "strings that look like other types": _document(
        Mappings={"M": {"K": ["true", "1", "0x1F", "null", "", "2020-01-01"]}}
    ),
}


@pytest.mark.parametrize("document", EXAMPLES.values(), ids=EXAMPLES.keys())
def test_made_up_templates_render_as_the_previous_renderer_did(document):
    assert yaml_text(document) == reference_yaml(document)


def _one_line(data: object) -> int:
    """The previous renderer's measure: the subtree dumped alone in flow style."""
    return len(yaml.dump(data, default_flow_style=True, width=10**6).strip())


# Shapes whose one-line length is swept across FLOW_LENGTH: each pads a string inside a different context.
SHAPES = {
    "value": lambda pad: {"Key": pad},
    "quoted in a list": lambda pad: {"Fn::Join": ["", ["'" + pad, {"Ref": "X"}]]},
    "key": lambda pad: {pad: 1, "b": [1, 2]},
    "multi-line, two levels down": lambda pad: {"A": [["x\ny\nz", pad]], "B": {"C": ["p\nq"]}},
    "unicode escaped in the measure": lambda pad: {"A": ["日本" + pad]},
}


@pytest.mark.parametrize("shape", SHAPES.values(), ids=SHAPES.keys())
def test_the_layout_changes_at_the_flow_length_as_before(shape):
    """Around FLOW_LENGTH one character decides between one line and a block: both renderers agree on each
    side of it."""
    crossing = next(size for size in range(FLOW_LENGTH + 1) if _one_line(shape("p" * size)) > FLOW_LENGTH)
    assert crossing > 3, "the shape alone is longer than FLOW_LENGTH"
    for size in range(crossing - 3, crossing + 3):
        data = shape("p" * size)
        assert render._OneLineLayout(render.ScalarMemo()).one_line(data) == (size < crossing), size
        document = _document(Resources={"A": {"Properties": {"P": data}}})
        assert yaml_text(document) == reference_yaml(document), size


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(alphabet=TRICKY, max_size=12)
    | st.text(max_size=8)
    | st.sampled_from(TRICKY_KEYS)
    | st.builds(lambda n, s: s * n, st.integers(20, 130), st.sampled_from(["ab ", "x", "'q", "日", "a\n"]))
)
keys = st.text(alphabet=TRICKY, max_size=10) | st.sampled_from(TRICKY_KEYS)
documents = st.dictionaries(
    keys,
    st.recursive(
        scalars,
        lambda children: st.lists(children, max_size=6) | st.dictionaries(keys, children, max_size=6),
        max_leaves=40,
    ),
    max_size=5,
)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_any_json_document_renders_as_the_previous_renderer_did(document):
    assert yaml_text(document) == reference_yaml(document)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents, documents)
def test_documents_rendered_with_one_memo_render_as_each_alone(first, second):
    """A build renders its templates with one ScalarMemo: what was decided of a text in one (in the file or in
    the one-line measure, with or without allow_unicode) is what it would be in the other."""
    memo = render.ScalarMemo()
    assert yaml_text(first, memo) == reference_yaml(first)
    assert yaml_text(second, memo) == reference_yaml(second)
    assert yaml_text(first, memo) == reference_yaml(first)


def test_each_scalar_is_analysed_once_however_deep_it_sits(monkeypatch):
    """The previous renderer dumped every subtree again for each mapping or list above it: a scalar ten levels
    down was analysed ten times. Now each distinct text is analysed once for the one-line measure and once
    for the file (twice only when it is not ASCII, which the two write differently)."""
    analysed: list[str] = []
    original = render.scalar_analysis

    def counting(scalar, allow_unicode):
        analysed.append(scalar)
        return original(scalar, allow_unicode)

    monkeypatch.setattr(render, "scalar_analysis", counting)
    deep: object = ["leaf é"]
    for level in range(40):
        deep = {f"level{level}": deep, "Ref": "same"}
    yaml_text({"Resources": deep})
    assert analysed.count("leaf é") == 2
    assert analysed.count("same") == 1
    assert analysed.count("level0") == 1


# Where render.py writes a scalar from what it remembers (plain or single-quoted text that cannot wrap), the
# same text and the same state after as PyYAML's process_tag and process_scalar, for any text, place and context.
@settings(max_examples=600, deadline=None)
@given(
    text=st.text(alphabet="ab '\n\u2028:#-é", max_size=40) | st.sampled_from(TRICKY_KEYS) | scalars,
    column=st.integers(0, LINE_WIDTH + 5),
    whitespace=st.booleans(),
    indention=st.booleans(),
    root=st.booleans(),
    simple_key=st.booleans(),
    flow_level=st.integers(0, 2),
    open_ended=st.booleans(),
)
def test_scalars_are_written_as_pyyaml_writes_them(
    text, column, whitespace, indention, root, simple_key, flow_level, open_ended
):
    writer = render._TemplateWriter(io.StringIO(), memo=render.ScalarMemo(), width=LINE_WIDTH, allow_unicode=True)
    writer.tag_prefixes = dict(writer.DEFAULT_TAG_PREFIXES)  # as at a document's start
    event = writer.scalar_event(text)
    assume(not simple_key or writer.simple_key(text))  # PyYAML writes a key as a simple key only if it can be one

    def state(emitter, write) -> tuple:
        emitter.stream = io.StringIO()
        emitter.column, emitter.whitespace, emitter.indention, emitter.open_ended = (
            column,
            whitespace,
            indention,
            open_ended,
        )
        emitter.root_context, emitter.simple_key_context, emitter.flow_level = root, simple_key, flow_level
        emitter.indent, emitter.indents = 4, [2]
        emitter.tag_prefixes = dict(emitter.DEFAULT_TAG_PREFIXES)
        write(emitter)
        return (
            emitter.stream.getvalue(),
            emitter.column,
            emitter.whitespace,
            emitter.indention,
            emitter.open_ended,
            emitter.indent,
        )

    def pyyaml_s(emitter):
        emitter.event, emitter.analysis, emitter.style, emitter.prepared_tag = event, None, None, None
        emitter.process_tag()
        emitter.increase_indent(flow=True)
        emitter.process_scalar()
        emitter.indent = emitter.indents.pop()

    theirs = state(yaml.SafeDumper(io.StringIO(), width=LINE_WIDTH, allow_unicode=True), pyyaml_s)
    # Twice: the second time from what the first remembered.
    assert state(writer, lambda w: w._scalar(text)) == theirs
    assert state(writer, lambda w: w._scalar(text)) == theirs


@pytest.mark.parametrize("document", ["built", *EXAMPLES.values()], ids=["built", *EXAMPLES.keys()])
def test_the_yaml_reads_back_as_the_document(document, raw_template):
    """What CloudFormation (or anyone) reads from the YAML is the template: the layout changes nothing."""
    document = raw_template if document == "built" else document
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    assert yaml.load(yaml_text(document), Loader=loader) == document


# Every character analyze_scalar treats apart, at any place: indicators, whitespace and breaks of each kind,
# the edges of the ranges it writes unescaped (with and without allow_unicode), a lone surrogate.
ANALYSED = "-.?:#,[]{}&*!|>'\"%@` \t\r\n\x00\x1f\x7e\x7f\x85\x9f\xa0\ud7ff\ud800\ue000\ufefe\ufeff\ufffd\ufffe\U00010000\U0010fffe\U0010ffffaZ0"


@settings(max_examples=3000, deadline=None)
@given(text=st.text(alphabet=ANALYSED, max_size=8) | st.text(max_size=12), allow_unicode=st.booleans())
def test_scalar_analysis_is_pyyaml_s(text, allow_unicode):
    """render.scalar_analysis finds with patterns what PyYAML's analyze_scalar finds character by character."""
    theirs = yaml.emitter.Emitter(io.StringIO(), allow_unicode=allow_unicode).analyze_scalar(text)
    assert vars(render.scalar_analysis(text, allow_unicode)) == vars(theirs)
