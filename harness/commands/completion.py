"""`harness completion bash|zsh`: a shell completion script generated from the parser itself (shtab)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

SHELLS = ("bash", "zsh")
# Recipe names come from the harness at completion time, so recipes in --recipes folders complete too.
PREAMBLE = {
    "bash": '_harness_recipe_names() {\n'
            '  compgen -W "$(command harness recipes list --names 2>/dev/null)" -- "$1"\n'
            '}\n',
    "zsh": '_harness_recipe_names() {\n'
           '  local -a names\n'
           '  names=(${(f)"$(command harness recipes list --names 2>/dev/null)"})\n'
           "  _describe 'recipe' names\n"
           '}\n',
}


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("completion", help="print a shell completion script (bash or zsh)",
                       description="Print a completion script for every command and option. bash: "
                                   "harness completion bash > ~/.local/share/bash-completion/completions/harness; "
                                   "zsh: harness completion zsh > \"${fpath[1]}/_harness\".")
    p.add_argument("shell", choices=SHELLS, help="the shell to complete in")
    p.set_defaults(func=run)


def _actions(parser: argparse.ArgumentParser) -> Iterator[argparse.Action]:
    for action in parser._actions:
        yield action
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                yield from _actions(child)


def script(shell: str) -> str:
    """The completion script for `shell`, from the full parser."""
    import shtab

    from harness.cli import make_parser

    parser = make_parser()
    for action in _actions(parser):
        if action.dest == "recipe":
            action.complete = {"bash": "_harness_recipe_names", "zsh": "_harness_recipe_names"}  # type: ignore[attr-defined]
    return str(shtab.complete(parser, shell=shell, preamble=PREAMBLE[shell]))


def run(args: argparse.Namespace) -> int:
    print(script(args.shell))
    return 0
