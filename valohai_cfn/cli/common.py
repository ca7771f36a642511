"""What the command modules share: the group's error handling and exit codes, the options every AWS
command takes, the template (a fresh build or a reviewed file) and the parameter file it is deployed with.

Heavy imports (cfn-lint, boto3, rich) happen inside the functions that need them, so `build` stays fast.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
import json
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import click

# Exit codes, the same in every command.
EXIT_OK = 0
EXIT_FAILED = 1  # the operation failed or was refused; the message says why
EXIT_BAD_INPUT = 2  # an option, argument or file is not valid; nothing was called or changed
EXIT_CHANGES = 3  # plan/diff --exit-code: there are changes; drift: something drifted
EXIT_INTERRUPTED = 130  # Ctrl-C; a stack operation goes on in AWS

T = TypeVar("T")


class BadInput(click.ClickException):
    """An input that is not valid (a file, a value); exit 2, one line, before any AWS call."""

    exit_code = EXIT_BAD_INPUT


class ProblemsFound(BadInput):
    """Problems were printed one per line already; exit 2 with a summary."""


class Interrupted(click.ClickException):
    """Ctrl-C: exit 130 with what goes on and how to resume (`watching`), or what was left."""

    exit_code = EXIT_INTERRUPTED

    def __init__(self, message: str, *, watching: bool = True) -> None:
        super().__init__(message)
        self.watching = watching


# The user name and password of a URL (http://user:secret@host): never printed, whoever's message quotes it.
# Up to the last @ before the host: a password may hold an @ of its own, quotes, anything but / and spaces.
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s]*@")
ENDPOINT_VARIABLES = "AWS_ENDPOINT_URL"  # and AWS_ENDPOINT_URL_<SERVICE>, which botocore reads too


def url_credentials(url: str) -> str | None:
    """What stands between a URL's scheme and its last @ (its user name and password, whatever characters they
    hold); None when it has none."""
    _scheme, separator, rest = url.partition("://")
    if not separator or "@" not in rest:
        return None
    return rest.rsplit("@", 1)[0]


def without_credentials(url: str) -> str:
    """The URL as it can be shown: its credentials as ****."""
    credentials = url_credentials(url)
    return url if credentials is None else url.replace(f"{credentials}@", "****@", 1)


def endpoint_credentials(args: list[str]) -> list[str]:
    """The credentials in the endpoints given (--endpoint-url, AWS_ENDPOINT_URL*), as written and as repr()
    quotes them: replaced wherever a message quotes them, even with a space or a quote inside."""
    urls = [v for k, v in os.environ.items() if k.startswith(ENDPOINT_VARIABLES)]
    for i, arg in enumerate(args):
        if arg == "--endpoint-url" and i + 1 < len(args):
            urls.append(args[i + 1])
        elif arg.startswith("--endpoint-url="):
            urls.append(arg.partition("=")[2])
    found = [c for c in map(url_credentials, urls) if c]
    return sorted({*found, *(repr(c)[1:-1] for c in found)}, key=len, reverse=True)


def masked(text: str, credentials: list[str] | None = None) -> str:
    """The text with the credentials of every URL in it replaced by ****: those known (`credentials`) wherever
    they appear, and whatever stands between a URL's scheme and its host's @."""
    for known in credentials or []:
        text = text.replace(known, "****")
    return _URL_CREDENTIALS.sub(r"\1****@", text)


class ValohaiCfnGroup(click.Group):
    """A click group whose errors are one line on stderr and an exit code, never a traceback or usage dump."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):  # type: ignore[override]
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        secrets = endpoint_credentials(list(sys.argv[1:] if args is None else args))
        try:
            result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except click.UsageError as e:
            hint = f" (see '{e.ctx.command_path} --help')" if e.ctx else ""
            click.echo(masked(f"Error: {one_line(e.format_message())}{hint}", secrets), err=True)
            sys.exit(EXIT_BAD_INPUT)
        except Interrupted as e:
            _ignore_further_interrupts()
            what = "Stopped watching." if e.watching else "Interrupted."
            click.echo(masked(f"\n{what} {e.format_message()}", secrets), err=True)
            sys.exit(e.exit_code)
        except click.ClickException as e:
            click.echo(masked(f"Error: {e.format_message()}", secrets), err=True)
            sys.exit(e.exit_code)
        except (click.Abort, KeyboardInterrupt):
            _ignore_further_interrupts()
            click.echo("\nInterrupted.", err=True)
            sys.exit(EXIT_INTERRUPTED)
        sys.exit(result if isinstance(result, int) else EXIT_OK)


# Set by the program's entry point (cli.main): the process is the command's own and ends with it. A command
# run inside another program (click's CliRunner, the tests) must leave its signal handlers alone: an ignored
# SIGINT outlives the command there, and every process started afterwards inherits it.
OWNS_PROCESS = False


def _ignore_further_interrupts() -> None:
    """Once Ctrl-C has been handled, what is left is a line and the exit: a second Ctrl-C then would only turn
    the exit into a traceback from the interpreter's shutdown (or death by the signal, exit -2). Only in the
    program's own process (OWNS_PROCESS)."""
    import signal
    import threading

    if OWNS_PROCESS and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def one_line(text: str) -> str:
    return " ".join(text.split())


def guarded(run: Callable[[], T]) -> T:
    """Run a command body, turning AWS, deploy, publish and parameter-file errors into one-line errors: exit 2
    for an input that is wrong (a file, a value, a change set of another stack, no region or credentials), 1 for
    what AWS or the deploy refused (an image not shared among it), 130 for Ctrl-C."""
    from valohai_cfn.aws import AwsError, AwsSetupError, aws_errors
    from valohai_cfn.deploy import DeployError, StoppedWatching, WrongInput
    from valohai_cfn.deploy import Interrupted as DeployInterrupted
    from valohai_cfn.images import ImageDowngrade, ImageNotShared
    from valohai_cfn.params import ParamsError
    from valohai_cfn.publish import PublishError

    try:
        with aws_errors():
            return run()
    except DeployInterrupted as e:
        raise Interrupted(str(e), watching=isinstance(e, StoppedWatching)) from None
    except (ParamsError, PublishError, WrongInput, AwsSetupError) as e:
        raise BadInput(str(e)) from None
    except (AwsError, DeployError, ImageNotShared, ImageDowngrade) as e:
        raise click.ClickException(str(e)) from None


def interactive() -> bool:
    """Whether a person can answer: standard input is a terminal."""
    return sys.stdin.isatty()


def approver(assume_yes: bool) -> Callable[[Any], bool] | None:
    """Who approves what the lifecycle asks (a lifecycle.Question): --yes, a person at a terminal, or nobody
    (None). Ctrl-C at the prompt is Ctrl-C (the lifecycle says what it leaves); end of input is a no."""
    from valohai_cfn.console import question_text

    if assume_yes:
        return lambda _question: True
    if not interactive():
        return None

    def ask(question: Any) -> bool:
        try:
            return click.confirm(question_text(question), default=False)
        except click.Abort as e:  # click turns both Ctrl-C and end of input into Abort
            if isinstance(e.__context__, EOFError):
                return False
            raise KeyboardInterrupt from None

    return ask


# -- options -------------------------------------------------------------------------------------


def _stack_name(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    from valohai_cfn.publish import PublishError, check_stack_name

    if value is None:
        return None
    try:
        check_stack_name(value)
    except PublishError as e:
        raise click.BadParameter(str(e)) from None
    return value


def stack_name_option(*, required: bool = True):
    return click.option(
        "--stack-name", required=required, callback=_stack_name, help="Name of the CloudFormation stack."
    )


def stack_name_argument():
    return click.argument("stack_name", callback=_stack_name)


def region_callback(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    from valohai_cfn.publish import PublishError, check_region

    if value is None:
        return None
    try:
        return check_region(value)
    except PublishError as e:
        raise click.BadParameter(str(e)) from None


def region_option(**kwargs: Any):
    return click.option("--region", callback=region_callback, **kwargs)


def _endpoint(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    from urllib.parse import urlsplit

    if value is None:
        return None
    shown = without_credentials(value)
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - a port that is not a number raises here
    except ValueError as e:
        raise click.BadParameter(
            masked(f"{shown!r} is not a URL: {e}", endpoint_credentials([f"--endpoint-url={value}"]))
        ) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.BadParameter(f"{shown!r} is not an http(s) URL, like http://127.0.0.1:5055")
    return value


def _profile(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not value.strip():
        raise click.BadParameter("empty: give a profile's name, or leave --profile out for the environment's")
    return value


def profile_options(command):
    """--profile and --endpoint-url: who talks to AWS, and where."""
    command = click.option(
        "--endpoint-url", callback=_endpoint, help="AWS endpoint to talk to instead (e.g. valohai-cfn local-aws)."
    )(command)
    return click.option("--profile", callback=_profile, help="AWS profile to use (default: the environment's).")(
        command
    )


def aws_options(command):
    """--region, --profile and --endpoint-url, shared by every command that talks to AWS."""
    command = profile_options(command)
    return region_option(
        envvar="AWS_REGION",
        show_envvar=True,
        help="AWS region (default: AWS_REGION, then AWS_DEFAULT_REGION or the profile's).",
    )(command)


def output_option(*choices: str):
    return click.option(
        "--output",
        "output_format",
        type=click.Choice(["text", "json", *choices]),
        default="text",
        show_default=True,
        help="text for a person; json for a script (the JSON is then the only thing on stdout).",
    )


def aws_clients(region: str | None, profile: str | None, endpoint_url: str | None):
    """The command's AWS clients (valohai_cfn.aws.Clients: a service name → its client). Made inside
    `guarded`, so that no region, an unknown profile or a key without its secret is one line."""
    from valohai_cfn.aws import Clients

    return Clients(profile, region, endpoint_url)


def _role_arn(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    from valohai_cfn.deploy import WrongInput, check_role_arn

    if value is None:
        return None
    try:
        return check_role_arn(value)
    except WrongInput as e:
        raise click.BadParameter(str(e)) from None


def role_arn_option(help_text: str):
    return click.option("--role-arn", callback=_role_arn, help=help_text)


# S3's bucket naming rules (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html).
_BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_BUCKET_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


def check_bucket_name(name: str) -> str:
    """An S3 bucket name S3 would accept; BadInput otherwise."""
    problem = None
    if not _BUCKET_NAME.match(name):
        problem = "3 to 63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit"
    elif ".." in name:
        problem = "no two dots in a row"
    elif name.startswith(_BUCKET_PREFIXES) or name.endswith(_BUCKET_SUFFIXES):
        problem = f"no prefix {', '.join(_BUCKET_PREFIXES)} and no suffix {', '.join(_BUCKET_SUFFIXES)}"
    else:
        with contextlib.suppress(ValueError):
            ipaddress.IPv4Address(name)
            problem = "not an IP address"
    if problem:
        shown = name if len(name) <= 70 else name[:70] + "…"
        raise BadInput(f"{shown!r} is not an S3 bucket name: {problem}")
    return name


def _bucket(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return check_bucket_name(value)
    except BadInput as e:
        raise click.BadParameter(e.message) from None


def bucket_option(help_text: str, **kwargs: Any):
    return click.option("--bucket", callback=_bucket, help=help_text, **kwargs)


def key_values(values: tuple[str, ...], option: str) -> dict[str, str]:
    pairs = {}
    for value in values:
        key, sep, item = value.partition("=")
        if not sep or not key.strip():
            # Not quoted: the value may be a NoEcho parameter's, and which parameter it is cannot be told.
            raise click.BadParameter(
                f"item {len(pairs) + 1} is not KEY=VALUE (it is not shown: it may hold a secret)", param_hint=option
            )
        if key.strip() in pairs:  # the last would win, silently
            raise click.BadParameter(f"{key.strip()} is given twice", param_hint=option)
        pairs[key.strip()] = item
    return pairs


# -- the template ---------------------------------------------------------------------------------


BUILT = "the built template"


@dataclass(frozen=True)
class TemplateSource:
    """The template a command works with: what is sent to CloudFormation, and the same as a document."""

    body: str
    document: dict[str, Any]
    label: str  # for messages: the file, or "the built template"

    @property
    def specs(self) -> dict[str, dict]:
        return self.document.get("Parameters", {})

    @property
    def defaults(self) -> dict[str, str | None]:
        return {name: (None if "Default" not in p else str(p["Default"])) for name, p in self.specs.items()}

    @functools.cached_property
    def footprint(self) -> Any:
        """How much of CloudFormation's quotas the template uses per worker type (params.Footprint)."""
        from valohai_cfn import specs
        from valohai_cfn.params import template_footprint

        return specs.footprint() if self.label == BUILT else template_footprint(self.document)


@functools.cache
def built() -> Any:
    """The built troposphere Template, built once per command (the build is deterministic)."""
    from valohai_cfn.template import build_template

    return build_template()


@functools.cache
def built_pool() -> Any:
    """The built worker pool's troposphere Template, built once per command."""
    from valohai_cfn.template import build_pool_template

    return build_pool_template()


@functools.cache
def built_ssh() -> Any:
    """The built SSH template's troposphere Template (SSH to the app instance), built once per command."""
    from valohai_cfn.template import build_ssh_template

    return build_ssh_template()


def _rendered_source(template: Any, label: str) -> TemplateSource:
    """A built troposphere Template as a TemplateSource: its JSON rendering, and the same as a document."""
    from valohai_cfn.render import render_json

    body = render_json(template)
    return TemplateSource(body, json.loads(body), label)


def built_source() -> TemplateSource:
    return _rendered_source(built(), BUILT)


def built_pool_source() -> TemplateSource:
    return _rendered_source(built_pool(), "the built worker pool template")


def built_ssh_source() -> TemplateSource:
    from valohai_cfn.render import SSH_TEMPLATE_NAME

    return _rendered_source(built_ssh(), f"the built SSH template ({SSH_TEMPLATE_NAME})")


def file_source(path: Path, region: str | None) -> TemplateSource:
    """A template file (JSON or YAML), checked with the same cfn-lint a build is: a reviewed, pinned file
    deploys only if it is one the build could have made."""
    import cfn_flip

    from valohai_cfn.lint import DEFAULT_REGIONS, format_matches, lint_text
    from valohai_cfn.params import read_text

    text = guarded(lambda: read_text(path, what="template"))
    try:
        document = cfn_flip.load(text)[0]
    except Exception as e:  # cfn_flip raises JSON's or YAML's own errors
        raise BadInput(f"{path}: not a JSON or YAML template: {one_line(str(e))[:200]}") from None
    if not isinstance(document, dict) or "Resources" not in document:
        raise BadInput(f"{path}: not a CloudFormation template (no Resources)")
    matches = lint_text(text, (region,) if region else DEFAULT_REGIONS, filename=str(path))
    if matches:
        # A template cfn-lint finds fault with is wrong input, like a parameter file with problems: listed, exit 2.
        click.echo(format_matches(matches), err=True)
        raise ProblemsFound(f"{path}: cfn-lint: {len(matches)} finding(s); not using it")
    return TemplateSource(text, document, str(path))


def template_source(path: Path | None, region: str | None = None) -> TemplateSource:
    return file_source(path, region) if path else built_source()


def template_option(command):
    return click.option(
        "--template",
        "template_path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Use this template file (e.g. a reviewed, pinned one) instead of a fresh build; cfn-lint checks it.",
    )(command)


# -- parameter files ------------------------------------------------------------------------------


def stop_on_problems(label: str, problems: list) -> None:
    """Any problem ends the command with exit 2: one alone is the error's one line; several are printed one
    per line, then counted."""
    if len(problems) == 1:
        raise ProblemsFound(f"{label}: {problems[0]}")
    for problem in problems:
        click.echo(f"{label}: {problem}", err=True)
    if problems:
        raise ProblemsFound(f"{label}: {len(problems)} problem(s)")


def checked_parameter_file(
    params_file: Path,
    specs: dict[str, dict],
    overrides: dict[str, str] | None = None,
    *,
    footprint: Any = None,
    required: bool = True,
) -> Any:
    """The file's parameters with --set overrides on top, and its stack tags (params.ParameterFile), checked
    offline against the template and AWS's rules: its constraints, the worker types, CloudFormation's quotas
    on what the types make (with the template's `footprint`), the tags. Each problem is blamed on where its
    value came from (the file, or --set). `required` False: a parameter without a default may be left out (an
    update keeps the stack's value; the lifecycle checks it once it knows the stack)."""
    from valohai_cfn.aws_rules import tag_problems
    from valohai_cfn.params import ParameterFile, check_parameters, load_parameter_file, quota_problems

    read = guarded(lambda: load_parameter_file(params_file))
    overrides = overrides or {}
    given = {**read.values, **overrides}
    problems = [p for p in check_parameters(specs, given) if required or not (p.value is None and p.parameter in specs)]
    problems += quota_problems(footprint, specs, given) + tag_problems(read.tags)
    from_set = [p for p in problems if getattr(p, "parameter", None) in overrides]
    stop_on_problems("--set", from_set)
    stop_on_problems(str(params_file), [p for p in problems if p not in from_set])
    return ParameterFile(given, read.tags)


def checked_parameters(
    params_file: Path,
    specs: dict[str, dict],
    overrides: dict[str, str] | None = None,
    *,
    footprint: Any = None,
    required: bool = True,
) -> dict:
    """The file's parameters with --set overrides on top, checked as checked_parameter_file does."""
    return checked_parameter_file(params_file, specs, overrides, footprint=footprint, required=required).values


def set_option(command):
    return click.option(
        "--set",
        "overrides",
        multiple=True,
        metavar="KEY=VALUE",
        help="A parameter value on top of the params file; repeat for several.",
    )(command)


def default_region() -> str | None:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
