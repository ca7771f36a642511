"""Everything a person or a script sees: tables, colours, live progress, JSON.

The library (lifecycle.py, deploy.py, review.py, preflight.py) returns data; this module renders it, with rich:
the lifecycle's notes (`Report`), its questions (`question_text`), reviews, tables, progress. On a
terminal, a stack operation is a live display (events scroll, one status line redrawn); elsewhere (CI
logs, pipes) the same as plain lines, a tally printed whenever events came or every HEARTBEAT_SECONDS.
NO_COLOR or TERM=dumb give plain text without a single escape code. With `--output json` the JSON document
is the only thing on stdout; what a person would read goes to stderr.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from valohai_cfn import lifecycle, pools
from valohai_cfn.deploy import ChangeSet, Drift, Outcome, Protection, Tally, cause_text
from valohai_cfn.lifecycle import Asked, Question
from valohai_cfn.preflight import Check
from valohai_cfn.review import PropertyChange, Review, SecurityChange

HEARTBEAT_SECONDS = 15.0
# Without a terminal (CI logs) lines are not wrapped at 80 columns.
PLAIN_WIDTH = 200
VALUE_WIDTH = 80  # property values longer than this are shortened in tables

STATUS_STYLES = (("FAILED", "bold red"), ("ROLLBACK", "red"), ("IN_PROGRESS", "yellow"), ("COMPLETE", "green"))
ACTION_STYLES = {"Add": "green", "Modify": "yellow", "Remove": "red", "Import": "cyan", "Dynamic": "magenta"}
TERMINATION_WORDS = "Termination protection is on (valohai-cfn delete --force lifts it)."


def plain() -> bool:
    """No colours and no cursor movement: NO_COLOR (https://no-color.org) or a dumb terminal."""
    return "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb"


def make_console(*, stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    is_terminal = stream.isatty() and not plain()
    columns = os.environ.get("COLUMNS")
    return Console(
        stderr=stderr,
        color_system="auto" if is_terminal else None,  # None: no escape code at all, styles included
        force_terminal=is_terminal,
        width=None if is_terminal else int(columns) if columns and columns.isdigit() else PLAIN_WIDTH,
        highlight=False,
        markup=False,  # values are shown as they are: [brackets] and :secret: are text, not markup or emoji
        emoji=False,
        soft_wrap=not is_terminal,
    )


def status_style(status: str | None) -> str:
    for marker, style in STATUS_STYLES:
        if status and marker in status:
            return style
    return ""


def short(value: str | None, width: int = VALUE_WIDTH) -> str:
    if value is None:
        return "-"
    one_line = " ".join(value.split())
    return one_line if len(one_line) <= width else one_line[: width - 1] + "…"


class Output:
    """One command's output: text for a person, or (--output json) one JSON document on stdout with the
    person's text on stderr."""

    def __init__(self, as_json: bool = False) -> None:
        self.as_json = as_json
        self.console = make_console(stderr=as_json)

    def line(self, text: str = "", style: str = "") -> None:
        self.console.print(Text(text, style=style))

    def warn(self, text: str) -> None:
        self.line(text, "bold yellow")

    def json(self, document: Any) -> None:
        sys.stdout.write(json.dumps(document, indent=2, default=str, sort_keys=False) + "\n")
        sys.stdout.flush()

    def table(self, table: Table) -> None:
        if self.console.is_terminal:
            self.console.print(table)
            return
        # In a log, no cell padding trails a line.
        with self.console.capture() as captured:
            self.console.print(table)
        self.console.file.write("".join(line.rstrip() + "\n" for line in captured.get().splitlines()))
        self.console.file.flush()

    @contextmanager
    def progress(self) -> Iterator[LiveProgress]:
        progress = LiveProgress(self.console)
        with progress.shown():
            yield progress


def heartbeat(out: Output, text: str):
    """A callback for a wait that has no events: a line every HEARTBEAT_SECONDS, so a log shows it is alive."""
    printed = [0.0]

    def tick(elapsed: float) -> None:
        if elapsed - printed[0] >= HEARTBEAT_SECONDS:
            out.line(f"  {text} ({int(elapsed)} s)")
            printed[0] = elapsed

    return tick


def _table(*columns: str) -> Table:
    table = Table(box=None, show_edge=False, pad_edge=False, header_style="bold", padding=(0, 2, 0, 0))
    for column in columns:
        table.add_column(column, overflow="fold")
    return table


# -- live progress of a stack operation -----------------------------------------------------------


def tally_text(tally: Tally) -> Text:
    minutes, seconds = divmod(int(tally.elapsed), 60)
    of = f" of {tally.total}" if tally.total is not None else ""
    text = Text(f"[{minutes:02d}:{seconds:02d}] {tally.done}{of} done, {tally.in_progress} in progress, ")
    text.append(f"{tally.failed} failed", style="bold red" if tally.failed else "")
    if tally.stack_status:
        text.append("; stack ")
        text.append(tally.stack_status, style=status_style(tally.stack_status))
    else:
        text.append("; the stack is gone")
    return text


def event_text(event: dict) -> Text:
    status = event["ResourceStatus"]
    text = Text(f"{event['Timestamp']:%H:%M:%S}  ")
    text.append(f"{status:<28}", style=status_style(status))
    text.append(f" {event['LogicalResourceId']} ({event['ResourceType']})")
    if event.get("ResourceStatusReason"):
        text.append(f"  {event['ResourceStatusReason']}", style="red" if "FAILED" in status else "dim")
    return text


class LiveProgress:
    """deploy.Progress for a terminal (a live status line under the scrolling events) or a log (a tally line
    after events, or every HEARTBEAT_SECONDS without any, and always the last one)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.live: Live | None = None
        self.last: Tally | None = None
        self.last_printed: Tally | None = None
        self.printed_at = time.monotonic()
        self.events_came = False

    @contextmanager
    def shown(self) -> Iterator[None]:
        try:
            if self.console.is_terminal:
                with Live(Text(""), console=self.console, transient=True, refresh_per_second=4) as live:
                    self.live = live
                    yield
            else:
                yield
        finally:
            self.live = None
            if self.last is not None and self.last is not self.last_printed:
                self._print(self.last)

    def _print(self, tally: Tally) -> None:
        self.console.print(tally_text(tally))
        self.last_printed = tally
        self.printed_at = time.monotonic()

    def events(self, events: list[dict]) -> None:
        for event in events:
            self.console.print(event_text(event))
        self.events_came = True

    def tally(self, tally: Tally) -> None:
        self.last = tally
        if self.live:
            self.live.update(tally_text(tally))
        elif self.events_came or time.monotonic() - self.printed_at >= HEARTBEAT_SECONDS:
            self._print(tally)
            self.events_came = False


# -- the review ---------------------------------------------------------------------------------


def show_parameters(out: Output, review: Review) -> None:
    if not review.parameters:
        return
    table = _table("Parameter", "Before", "After")
    for p in review.parameters:
        table.add_row(p.name, short(p.old) if p.old is not None else "(none)", Text(short(p.new), style="bold"))
    out.line("Parameters that change:", "bold")
    out.table(table)


def no_resource_changes_text(review: Review, *, from_change_set: bool) -> str:
    """What is true when no resource changes: which of the parameter values, outputs and stack tags do (the
    review reads all three, from a change set or from the two templates), or that none does."""
    changing = [
        what
        for what, items in (
            ("parameter values", review.parameters),
            ("outputs", review.outputs),
            ("stack tags", review.tags),
        )
        if items
    ]
    if changing:
        listed = changing[0] if len(changing) == 1 else f"{', '.join(changing[:-1])} and {changing[-1]}"
        return f"No resource changes: only {listed} change."
    if from_change_set:
        return "No resource changes, and no parameter value, output or stack tag changes."
    return "No changes: the resources, outputs and parameter values are as deployed."


def _property_line(c_id: str, p: PropertyChange) -> Text:
    line = Text(f"  {c_id}.{p.path}: ")
    line.append(short(p.before, 50) if p.before is not None or not p.attribute else "(not set)", style="red")
    line.append(" → ")
    if p.after is None and p.at_deploy:
        line.append("(changes at deploy)", style="yellow")  # CloudFormation evaluates it only while executing
        return line
    line.append(short(p.after, 70) if p.after is not None or not p.attribute else "(not set)", style="green")
    if p.at_deploy:
        line.append("  (changes at deploy)", style="yellow")
    if p.requires_recreation in ("Always", "Conditionally"):
        line.append(f"  (replacement: {p.requires_recreation.lower()})", style="bold red")
    return line


def show_changes(out: Output, review: Review, *, from_change_set: bool = True) -> None:
    if not review.resources:
        out.line(no_resource_changes_text(review, from_change_set=from_change_set))
        return
    table = _table("Action", "Logical ID", "Resource type", "Replacement")
    for c in review.resources:
        replacement = Text(c.replacement or "-", style="bold red" if c.replacement in ("True", "Conditional") else "")
        table.add_row(Text(c.action, style=ACTION_STYLES.get(c.action, "")), c.logical_id, c.resource_type, replacement)
    out.table(table)
    changed = [(c, p) for c in review.resources for p in c.properties]
    if changed:
        out.line("Property changes:", "bold")
    for c, p in changed:
        out.console.print(_property_line(c.logical_id, p))


def _before_after(name: str, before: str | None, after: str | None, widths: tuple[int, int]) -> Text:
    """`  name: before → after`, (none) and (removed) where a side is missing."""
    line = Text(f"  {name}: ")
    line.append(short(before, widths[0]) if before is not None else "(none)", style="red")
    line.append(" → ")
    line.append(short(after, widths[1]) if after is not None else "(removed)", style="green")
    return line


def show_tags(out: Output, review: Review) -> None:
    if not review.tags:
        return
    out.line("Stack tags that change:", "bold")
    for t in review.tags:
        out.console.print(_before_after(t.key, t.before, t.after, (VALUE_WIDTH, VALUE_WIDTH)))


def show_outputs_changes(out: Output, review: Review) -> None:
    if not review.outputs:
        return
    out.line("Outputs that change:", "bold")
    for o in review.outputs:
        line = _before_after(o.name, o.before, o.after, (50, 70))
        if o.at_deploy:
            line.append("  (changes at deploy)", style="yellow")
        out.console.print(line)


def security_text(change: SecurityChange) -> Text:
    style = "bold red" if change.stands_out else ("green" if change.opens else "red")
    marker = "!" if change.stands_out else " "
    text = Text(f"{marker} {change.change} ", style=style)
    text.append(f"{change.kind:<7} {change.owner}: {change.text}", style=style if change.stands_out else "")
    return text


def show_security(out: Output, review: Review) -> None:
    if not review.security:
        return
    out.line(
        "Security changes (+ opened or widened, - closed or narrowed; ! reachable from an address range or "
        "a wildcard):",
        "bold",
    )
    for change in review.security:
        out.console.print(security_text(change))


# What replacing the app instance means, said where it is reviewed (an upgrade is `--set RoiAmiId=latest`).
APP_INSTANCE_REPLACED = (
    "The app instance is replaced: a new one boots from the image given, and the update waits for its health "
    "signal (the app answering /healthz) before it completes; the old instance is removed afterwards. The "
    "database, bucket and secrets are kept, and the new app migrates the database as it starts. Should its "
    "health signal fail, CloudFormation rolls back to the old instance on the database the new app may already "
    "have migrated: take a database snapshot first (aws rds create-db-snapshot)."
)


def show_review(out: Output, review: Review, *, from_change_set: bool = True) -> None:
    show_parameters(out, review)
    show_changes(out, review, from_change_set=from_change_set)
    if review.replaces_app_instance:
        out.warn(APP_INSTANCE_REPLACED)
    show_outputs_changes(out, review)
    show_tags(out, review)
    show_security(out, review)


def review_json(review: Review, change_set: ChangeSet | None = None, **extra: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "has_changes": review.has_changes,
        "parameters": [asdict(p) for p in review.parameters],
        "changes": [
            {
                "action": c.action,
                "logical_id": c.logical_id,
                "resource_type": c.resource_type,
                "replacement": c.replacement,
                "properties": [asdict(p) for p in c.properties],
            }
            for c in review.resources
        ],
        "outputs": [asdict(o) for o in review.outputs],
        "tags": [asdict(t) for t in review.tags],
        "security": [{**asdict(s), "opens": s.opens} for s in review.security],
        "data_loss": [c.logical_id for c in review.data_loss],
        "replaces_app_instance": review.replaces_app_instance,
    }
    if change_set:
        document["change_set"] = {"name": change_set.name, "id": change_set.arn, "type": change_set.kind}
    return {**extra, **document}


# -- preflight, outcome, status, outputs, drift, delete -------------------------------------------


def show_preflight(out: Output, checks: list[Check]) -> None:
    table = _table("Check", "Result", "Detail")
    for c in checks:
        table.add_row(c.name, Text("ok" if c.ok else "FAILED", style="green" if c.ok else "bold red"), c.detail)
    out.table(table)


def preflight_json(checks: list[Check]) -> dict[str, Any]:
    return {"ok": all(c.ok for c in checks), "checks": [asdict(c) for c in checks]}


def _account_checked(out: Output, checked: lifecycle.AccountChecked) -> None:
    show_preflight(out, checked.checks)
    if out.as_json and not all(c.ok for c in checked.checks):
        # The command ends here: with --output json a script reads why on stdout, as `preflight` writes it.
        out.json(preflight_json(checked.checks))


def policy_words(denied: tuple[str, ...]) -> str:
    """What the stack policy applied does, exactly: the resources an update can no longer replace or delete."""
    if not denied:
        return "Stack policy applied: it protects nothing (the template has no database, bucket or secret)."
    return f"Stack policy applied: an update cannot replace or delete {', '.join(denied)}."


def show_protections(out: Output, protected: lifecycle.Protected) -> None:
    for protection in protected.applied:
        words = TERMINATION_WORDS if protection is Protection.TERMINATION else policy_words(protected.denied)
        out.line(f"Re-applied: {words}" if protected.mended else words, "yellow" if protected.mended else "")


def root_cause_text(event: dict) -> str:
    return f"{event['LogicalResourceId']} ({event['ResourceType']}) {event['ResourceStatus']}: {cause_text(event)}"


def show_root_cause(out: Output, outcome: Outcome) -> None:
    cause = outcome.root_cause
    if cause:
        out.line(f"Root cause: {root_cause_text(cause)}", "bold red")


def show_outputs(out: Output, values: dict[str, str]) -> None:
    if not values:
        out.line("  (no outputs)")
        return
    table = _table("Output", "Value")
    for key, value in values.items():
        table.add_row(key, value)
    out.table(table)


def show_events(out: Output, events: list[dict]) -> None:
    for e in events:
        line = Text(f"  {e['Timestamp']:%Y-%m-%d %H:%M:%S}  ")
        line.append(f"{e['ResourceStatus']:<28}", style=status_style(e["ResourceStatus"]))
        line.append(f" {e['LogicalResourceId']}")
        if e.get("ResourceStatusReason"):
            line.append(f"  {e['ResourceStatusReason']}", style="dim")
        out.console.print(line)


def event_json(event: dict) -> dict[str, Any]:
    keys = ("Timestamp", "LogicalResourceId", "ResourceType", "ResourceStatus", "ResourceStatusReason")
    return {k: (event[k].isoformat() if k == "Timestamp" else event[k]) for k in keys if k in event}


def show_drift(out: Output, status: str, drifted: list[Drift], unchecked: list[tuple[str, str]]) -> None:
    out.line(f"Drift: {status}", "bold red" if drifted else "green")
    for d in drifted:
        out.line(f"  {d.logical_id} ({d.resource_type}) {d.status}", "red")
        for path, expected, actual, kind in d.differences:
            out.line(f"    {path} ({kind}): {short(expected, 60)} → {short(actual, 60)}")
    if unchecked:
        # In sync or drifted, the status speaks only of the resources checked.
        out.line(f"Not checked ({len(unchecked)}, a type drift detection does not cover here):")
        for logical_id, resource_type in unchecked:
            out.line(f"  {logical_id} ({resource_type})")


def drift_json(stack: str, status: str, drifted: list[Drift], unchecked: list[tuple[str, str]]) -> dict[str, Any]:
    return {
        "stack": stack,
        "drift_status": status,
        "not_checked": [{"logical_id": i, "resource_type": t} for i, t in unchecked],
        "drifted": [
            {
                "logical_id": d.logical_id,
                "resource_type": d.resource_type,
                "status": d.status,
                "differences": [{"path": p, "expected": e, "actual": a, "type": k} for p, e, a, k in d.differences],
            }
            for d in drifted
        ],
    }


def show_deletion(out: Output, listed: lifecycle.DeleteListed) -> None:
    """What deleting the stack keeps and what it removes, before anyone approves it."""
    out.line("Kept after the delete:")
    for k in listed.kept:
        what = "final snapshot of" if k.policy == "Snapshot" else "kept:"
        out.line(f"  {what} {k.logical_id} ({k.resource_type}) {k.physical_id}")
    if not listed.kept:
        out.line("  nothing")
    out.line(f"Removed with the stack: {len(listed.removed)} resource(s)")
    by_type: dict[str, list[str]] = {}
    for logical_id, resource_type in listed.removed:
        by_type.setdefault(resource_type, []).append(logical_id)
    for resource_type, names in sorted(by_type.items()):
        out.line(f"  {resource_type}: {', '.join(names)}")
    if listed.lifts_termination_protection:
        why = "--recreate-failed" if listed.recreating else "--force"
        out.line(f"Its termination protection is lifted for the delete ({why}).")


# -- the lifecycle's questions and notes ----------------------------------------------------------


def question_text(question: Question | pools.StackSetQuestion | pools.StackSetDeleteQuestion) -> str:
    if isinstance(question, pools.StackSetDeleteQuestion):
        where = ", ".join(f"{a} {r}" for a, r in question.instances)
        return f"Delete StackSet {question.stack_set} and its instances' stacks ({where or 'none'})?"
    if isinstance(question, pools.StackSetQuestion):
        new = f"Create StackSet {question.stack_set}" if question.new else f"Change StackSet {question.stack_set}"
        return f"{new}: {len(question.creating)} instance(s) to make, {len(question.updating)} to update?"
    name = question.stack_name
    lifting = ", lifting its termination protection," if question.lifts_termination_protection else ""
    if question.asked is Asked.EXECUTE and question.change_set is not None:
        return f"Execute change set {question.change_set.name} on stack {name}?"
    if question.asked is Asked.RECREATE:
        return f"Delete stack {name} ({question.status}){lifting} to create it again?"
    return f"Delete stack {name}{lifting.rstrip(',')}?"


def _not_executed(out: Output, note: lifecycle.NotExecuted) -> None:
    change_set, stack = note.change_set, note.stack_name
    if note.kept:
        out.line(
            f"Change set {change_set.name} is ready and was not executed. Execute exactly it with: "
            f"valohai-cfn execute --stack-name {stack} {change_set.name}"
        )
        return
    out.line(
        f"Change set {change_set.name} was not executed and is deleted"
        + (f", with the empty stack {stack} it made" if note.stack_gone else "")
        + " (--keep keeps it)."
    )


def _images_resolved(out: Output, note: lifecycle.ImagesResolved) -> None:
    for image in note.images:
        out.line(f"{image.parameter}=latest: {image.image_id} ({image.name or 'no name'}, made {image.created})")


def _stepwise(out: Output, note: lifecycle.Stepwise) -> None:
    for step in note.steps:
        out.warn(step)


def _deleting(out: Output, note: lifecycle.Deleting) -> None:
    if note.lifting:
        why = "--recreate-failed" if note.recreating else "--force"
        out.line(f"Lifting termination protection ({why}) and deleting stack {note.stack_name}…")
    else:
        out.line(f"Deleting stack {note.stack_name}…")


NOTES: dict[type, Any] = {
    lifecycle.Waiting: lambda out, n: out.line(
        f"Stack {n.stack_name} is {n.status}; waiting for that operation to end (Ctrl-C stops waiting)…"
    ),
    lifecycle.AccountChecked: _account_checked,
    lifecycle.ImagesResolved: _images_resolved,
    lifecycle.CreatingChangeSet: lambda out, n: out.line(
        f"Creating change set {n.name} ({n.kind}) for stack {n.stack_name}…"
    ),
    lifecycle.UpToDate: lambda out, n: out.line(f"Stack {n.stack_name} is up to date: no changes."),
    lifecycle.Reviewed: lambda out, n: show_review(out, n.review),
    lifecycle.Stepwise: _stepwise,
    lifecycle.NotExecuted: _not_executed,
    lifecycle.Relaxed: lambda out, n: out.warn(
        f"--allow-replace: the stack policy lets this update replace {', '.join(n.resources)}; "
        "it is put back afterwards."
    ),
    lifecycle.Executing: lambda out, n: out.line(f"Executing change set {n.change_set.name}…"),
    lifecycle.Protected: show_protections,
    lifecycle.Failed: lambda out, n: show_root_cause(out, n.outcome),
    lifecycle.DeleteListed: show_deletion,
    lifecycle.Deleting: _deleting,
    lifecycle.Deleted: lambda out, n: out.line(
        f"Stack {n.stack_name} is deleted; creating it again." if n.recreating else f"Stack {n.stack_name} is deleted."
    ),
}


# -- worker pools ------------------------------------------------------------------------------------------


def pool_text(pool: pools.Pool) -> str:
    return f"{pool.name} (account {pool.account}, {pool.region})"


def _registering(out: Output, note: pools.Registering) -> None:
    changes = [f"registering {pool_text(p)}" for p in note.added]
    changes += [f"deregistering {pool_text(p)}" for p in note.removed]
    what = "; ".join(changes) or "its pools as they are"
    out.line(f"Installation {note.installation}: {what} (an update of its WorkerPoolRoleArns)…")


def _stack_set_planned(out: Output, note: pools.StackSetPlanned) -> None:
    question = note.question
    if question.new:
        out.line(f"StackSet {note.stack_set} is new: its template is the pool template processed for its types.")
    elif note.template_changes:
        out.line(f"StackSet {note.stack_set}: its template or parameters change; every instance is updated.")
    for verb, targets in (("make", question.creating), ("update", question.updating)):
        for t in targets:
            overrides = ", ".join(f"{k}={v}" for k, v in sorted(t.overrides.items()))
            out.line(f"  {verb} {t.account} {t.region}: {overrides}")
    if not question.creating and not question.updating:
        out.line(f"StackSet {note.stack_set} is up to date: no instance to make or update.")


def _instance_done(out: Output, note: pools.InstanceDone) -> None:
    style = "green" if note.status == "CURRENT" else "bold red"
    reason = f": {note.reason}" if note.reason else ""
    out.line(f"  {note.account} {note.region}: {note.status} ({note.detailed}){reason}", style)


NOTES[pools.Registering] = _registering
NOTES[pools.StackSetPlanned] = _stack_set_planned
NOTES[pools.InstanceDone] = _instance_done
NOTES[pools.OperationWaiting] = lambda out, n: out.line(
    f"StackSet {n.stack_set}: operation {n.operation_id} ({n.action}, {n.where}) under way; following it "
    "(Ctrl-C stops following)…"
)
NOTES[pools.Deregistered] = lambda out, n: out.line(
    f"Pool {pool_text(n.pool)} is not registered with {n.installation}: its master role may not assume its "
    "scaling role. Its stack goes next."
)


def show_pools(out: Output, installation: pools.Installation, statuses: list[pools.PoolStatus]) -> None:
    if not statuses:
        out.line(f"Installation {installation.name} has no worker pools (valohai-cfn pool deploy adds one).")
        return
    table = _table("Pool", "Account", "Region", "Types", "Groups (in service / desired / max, unhealthy)")
    for status in statuses:
        if status.groups is None:
            types, health = "?", status.note
        else:
            types = ", ".join(g.instance_type for g in status.groups) or "(no groups)"
            health = "; ".join(
                f"{g.instance_type} {g.in_service}/{g.desired}/{g.maximum}"
                + (f", {g.unhealthy} unhealthy" if g.unhealthy else "")
                for g in status.groups
            )
        table.add_row(status.pool.name, status.pool.account, status.pool.region, types, health)
    out.table(table)


def pools_json(installation: pools.Installation, statuses: list[pools.PoolStatus]) -> dict[str, Any]:
    return {
        "installation": installation.name,
        "pools": [
            {
                "name": s.pool.name,
                "account": s.pool.account,
                "region": s.pool.region,
                "scaling_role_arn": s.pool.role_arn,
                "groups": None if s.groups is None else [asdict(g) for g in s.groups],
                **({"unreadable": s.note} if s.groups is None else {}),
            }
            for s in statuses
        ],
    }


class Report:
    """lifecycle.Reporter for a person or a log: each note as lines, each operation's live progress."""

    def __init__(self, out: Output) -> None:
        self.out = out

    def note(self, note: Any) -> None:
        NOTES[type(note)](self.out, note)

    def progress(self) -> Any:
        return self.out.progress()
