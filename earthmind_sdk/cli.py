"""The ``earthmind`` command: plugins, run, infer, inspect.

Imports stay lazy so that ``earthmind plugins`` and ``--help`` never import torch.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from typing import Sequence

from .errors import EarthMindError


def _cmd_plugins(args: argparse.Namespace) -> int:
    from .plugins import PluginLoadWarning, plugin_infos

    with warnings.catch_warnings():
        # failures are shown as rows below; the warning would repeat them on stderr
        warnings.simplefilter("ignore", PluginLoadWarning)
        infos = plugin_infos()
    if args.json:
        print(json.dumps([i.as_dict() for i in infos], indent=2))
        return 0
    for info in infos:
        origin = "built-in" if info.builtin else (info.distribution or "?")
        print(f"{info.name}  ({origin} {info.version or ''})".rstrip())
        if info.error:
            print(f"    ERROR: {info.error}")
            continue
        for kind, names in info.components.items():
            print(f"    {kind}:")
            described = info.descriptions.get(kind, {})
            width = max(map(len, names))
            for name in names:
                print(f"      {name:<{width}}  {described.get(name, '')}".rstrip())
        if not info.components:
            print("    (registers nothing)")
    failed = [i.name for i in infos if i.error]
    if failed:
        print(f"\n{len(failed)} plugin(s) failed to load: {', '.join(failed)}", file=sys.stderr)
    return 0


def version_lines() -> list[str]:
    """The SDK's version, then each installed plugin distribution's, as ``earthmind plugins`` lists them."""
    from . import __version__
    from .plugins import PluginLoadWarning, plugin_infos

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PluginLoadWarning)
        infos = [i for i in plugin_infos() if not i.builtin]
    lines = [f"earthmind-sdk {__version__}"]
    dists: dict[str, list] = {}
    for info in infos:
        dists.setdefault(info.distribution or info.name, []).append(info)
    for dist, group in sorted(dists.items()):
        plugins = ", ".join(i.name for i in group)
        failed = " (failed to load)" if any(i.error for i in group) else ""
        lines.append(f"{dist} {group[0].version or '(unknown version)'}  plugin {plugins}{failed}")
    return lines


class _VersionAction(argparse.Action):
    """``--version``: lazy, so plain commands never pay for loading the plugin list."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS,
                         help="print the SDK version and the installed plugin distributions' versions")

    def __call__(self, parser, namespace, values, option_string=None):
        print("\n".join(version_lines()))
        parser.exit()


def _cmd_run(args: argparse.Namespace) -> int:
    from .recipes import load_recipe

    recipe = load_recipe(args.recipe, args.overrides)
    if args.dry_run:
        import yaml

        print(yaml.safe_dump({"job": recipe.job, **{k: v for k, v in recipe.config.items() if k != "job"}},
                             sort_keys=False), end="")
        return 0
    result = recipe.run()
    if result is not None:
        print(json.dumps(result, indent=2, default=str))
    return 0


def _cmd_infer(args: argparse.Namespace) -> int:
    from .inference.cli import infer_command
    from .inference.infer_many import infer_many_command, single_input

    return infer_command(args) if single_input(args) else infer_many_command(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="earthmind",
        description="Multi-sensor Earth-observation multimodal models (EarthMind, Sa2VA).",
    )
    parser.add_argument("--version", action=_VersionAction)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("plugins", help="list installed plugins and what each registered",
                       description="List every plugin (built-in and installed), its version, hooks, "
                                   "registered components, and the plugins that failed to load.")
    p.add_argument("--json", action="store_true", help="print a JSON list of plugin objects")
    p.set_defaults(func=_cmd_plugins)

    p = sub.add_parser("run", help="run a YAML recipe (training, evaluation, inference)",
                       description="Load RECIPE, apply dotted key=value overrides, validate, run.")
    p.add_argument("recipe", help="path to a recipe YAML file")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="dotted overrides, e.g. output.dir=/tmp/out model.device=cuda")
    p.add_argument("--dry-run", action="store_true", help="validate and print the resolved recipe, run nothing")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("infer", help="ask a question about one image (or a SAR + optical pair)",
                       description="Answer QUESTION about the given image(s); masks from [SEG] tokens are "
                                   "written as GeoTIFF (PNG when the input has no georeferencing) with overlays.")
    p.add_argument("question", help="the question or instruction")
    p.add_argument("--model", default="tiny",
                   help="checkpoint directory (HF format), or a bundled spec name (default: tiny, random weights)")
    p.add_argument("--image", action="append",
                   help="optical image: GeoTIFF, PNG or JPEG; repeat for several inputs (answered as one batch, "
                        "one JSON line each)")
    p.add_argument("--sar", action="append", help="SAR image paired with --image (the i-th with the i-th)")
    p.add_argument("--ms", action="append",
                   help="multispectral image (needs the earthmind-multispectral plugin; the i-th with the i-th)")
    p.add_argument("--images-from", metavar="FILE",
                   help="many inputs: a text file with one image path a line, or a CSV with columns image,sar,ms")
    p.add_argument("--batch-size", type=int, default=8, help="inputs per model batch (several inputs)")
    from .inference.cli import add_sensor_options  # no torch: the module imports it lazily

    add_sensor_options(p)
    p.add_argument("--task", default=None, help="task name (default: chosen from the question)")
    p.add_argument("--out", default="earthmind-out", help="folder for masks and overlays")
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    p.add_argument("--dtype", default="float32", choices=("float32", "bfloat16", "float16"))
    p.add_argument("--max-new-tokens", type=int, default=64)
    p.add_argument("--json", action="store_true", help="print a JSON object with answer and mask paths")
    p.set_defaults(func=_cmd_infer)

    from .inference.map_job import add_map_parser

    add_map_parser(sub)

    from .checkpoint.inspection import add_parser as add_inspect

    add_inspect(sub)
    return parser


def _warnings_as_lines(command: str):
    """Warnings (e.g. which bands the optical sensor guessed) as one stderr line each, no source echo."""
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"earthmind {command}: warning: {message}", file=sys.stderr)
    return show


def _add_quiet(sub) -> None:
    """``-q/--quiet`` on every command: no progress bars or log lines on stderr."""
    for p in sub.choices.values():
        if not any("--quiet" in a.option_strings for a in p._actions):
            p.add_argument("-q", "--quiet", action="store_true", help="no progress or log lines on stderr")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    _add_quiet(next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)))
    args = parser.parse_args(argv)
    if getattr(args, "quiet", False):
        from .jobs.progress import set_quiet

        set_quiet(True)
    with warnings.catch_warnings():
        warnings.showwarning = _warnings_as_lines(args.command)
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from .jobs.interrupt import EXIT_INTERRUPTED

    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print(f"earthmind {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except EarthMindError as exc:
        from .errors import JobInterrupted

        print(f"earthmind {args.command}: error: {exc}" if not isinstance(exc, JobInterrupted)
              else f"earthmind {args.command}: {exc}", file=sys.stderr)
        return EXIT_INTERRUPTED if isinstance(exc, JobInterrupted) else 2
    except Exception as exc:  # noqa: BLE001 - an SDK bug: still one line; EARTHMIND_DEBUG=1 shows the traceback
        import os

        if os.environ.get("EARTHMIND_DEBUG"):
            raise
        text = " ".join(str(exc).split())[:300]
        print(f"earthmind {args.command}: internal error: {type(exc).__name__}: {text} "
              "(rerun with EARTHMIND_DEBUG=1 for the traceback, and please report it)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
