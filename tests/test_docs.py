"""The commands the documentation shows run as written: every `python scripts/NAME.py ...` in README.md,
docs/*.md and the scripts' docstrings names a script that exists and only flags that script defines, and
every training command's gin files and bindings parse into a task; docs/skeletons.md's "Your own keypoints" runs
as written."""

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set, Tuple

import gin
import pytest

from personlab_tf import config, registry

REPO = Path(__file__).resolve().parents[1]
DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), *sorted((REPO / "scripts").glob("*.py"))]
COMMAND = re.compile(r"python scripts/(\w+)\.py")


def defined_flags(source: str) -> Set[str]:
    """The absl flags a source defines (`flags.DEFINE_*("name", ...)`; booleans also as `--noname`)."""
    names = set(re.findall(r'flags\.DEFINE_\w+\(\s*"(\w+)"', source))
    booleans = re.findall(r'flags\.DEFINE_bool(?:ean)?\(\s*"(\w+)"', source)
    return names | {"no" + name for name in booleans}


def script_flags() -> Dict[str, Set[str]]:
    """Each script's absl flags, read from its source and from the functions of personlab_tf/cli.py it calls
    (`cli.define_gin_flags()`, `cli.define_inference_flags()`)."""
    cli_source = (REPO / "personlab_tf" / "cli.py").read_text()
    shared = {name: defined_flags(cli_source.split(f"def {name}(")[1].split("\ndef ")[0])
              for name in ("define_gin_flags", "define_inference_flags")}
    defined = {}
    for script in (REPO / "scripts").glob("*.py"):
        source = script.read_text()
        defined[script.stem] = defined_flags(source).union(
            *(names for name, names in shared.items() if f"cli.{name}(" in source))
    return defined


def documented_commands() -> List[Tuple[str, str, str, str]]:
    """(where, script, arguments, the line after the command) of every command in the documents.

    A command in a code block runs to the end of its line, continued over lines ending in a backslash; one
    in inline code (an odd number of backticks before it) runs to the closing backtick, over lines if need
    be. A ` #` comment ends it."""
    return [command for document in DOCUMENTS
            for command in commands_in(document.read_text(), str(document.relative_to(REPO)))]


def commands_in(text: str, name: str) -> List[Tuple[str, str, str, str]]:
    """documented_commands for one document's text."""
    commands = []
    lines = text.splitlines() + [""]
    for number, line in enumerate(lines):
        for match in COMMAND.finditer(line):
            inline = line[:match.start()].count("`") % 2 == 1
            arguments, following = line[match.end():], number
            while following + 1 < len(lines) and (
                    ("`" not in arguments) if inline else arguments.rstrip().endswith("\\")):
                following += 1
                arguments = (arguments if inline else arguments.rstrip()[:-1]) + " " + lines[following]
            arguments = arguments.split("`")[0].split(" #")[0]
            commands.append((f"{name}:{number + 1}", match.group(1), arguments, lines[following + 1].strip()))
    return commands


COMMANDS = documented_commands()


def test_the_documents_show_commands_of_every_kind():
    scripts = {script for _, script, _, _ in COMMANDS}
    assert {"train", "evaluate", "export_saved_model", "create_tfrecords", "benchmark", "demo"} <= scripts
    assert len(COMMANDS) > 50


def wrong_commands(commands: List[Tuple[str, str, str, str]]) -> List[str]:
    """One line per command naming a script that does not exist or a flag its script does not define."""
    defined = script_flags()
    wrong = []
    for where, script, arguments, _ in commands:
        if script not in defined:
            wrong.append(f"{where}: no scripts/{script}.py")
            continue
        wrong += [f"{where}: scripts/{script}.py has no --{name}"
                  for name in re.findall(r"(?<![\w-])--(\w+)", arguments) if name not in defined[script]]
    return wrong


def test_documented_commands_use_existing_scripts_and_flags():
    assert not wrong_commands(COMMANDS), "\n".join(wrong_commands(COMMANDS))


def test_the_check_reports_unknown_flags_and_scripts():
    """Not vacuous: an earlier README's evaluation command (a create_tfrecords.py flag given to evaluate.py),
    continued over lines, in inline code, and a script that does not exist are each reported."""
    document = ("```sh\npython scripts/evaluate.py --saved_model exports/parts \\\n"
                "    --images val --part_set mhp_v2   # metrics\n```\n"
                "Then `python scripts/evaluate.py --saved_model x\n--nomulti_scale --max_sides 5`; "
                "`python scripts/evaluate_all.py --saved_model x`.\n")
    assert wrong_commands(commands_in(document, "doc")) == [
        "doc:2: scripts/evaluate.py has no --part_set", "doc:5: scripts/evaluate.py has no --max_sides",
        "doc:6: no scripts/evaluate_all.py"]


def gin_arguments(arguments: str) -> Tuple[List[str], List[str]]:
    """The --gin_file and --gin_bindings values of a command's arguments (optional ones in [...] included)."""
    tokens = shlex.split(arguments.replace("[", " ").replace("]", " "))
    files, bindings = [], []
    for flag, value in zip(tokens, tokens[1:]):
        if flag == "--gin_file":
            files.append(str(REPO / value))
        elif flag == "--gin_bindings":
            bindings.append(value)
    return files, bindings


def own_keypoints_start() -> int:
    """The line of docs/skeletons.md's "Your own keypoints" heading: its commands are run for real
    (`test_your_own_keypoints_runs_as_written`), on files they make first."""
    lines = (REPO / "docs" / "skeletons.md").read_text().splitlines()
    return lines.index("## Your own keypoints") + 1


def run_for_real(where: str) -> bool:
    """Whether the command at `where` (document:line) is one of "Your own keypoints"."""
    document, line = where.rsplit(":", 1)
    return document == "docs/skeletons.md" and int(line) > own_keypoints_start()


TRAINING_COMMANDS = [(where, arguments, after) for where, script, arguments, after in COMMANDS
                     if script == "train" and "--gin_file" in arguments and not run_for_real(where)]


def test_the_documents_show_the_recipes_training_commands():
    shown = {Path(file).name for _, arguments, _ in TRAINING_COMMANDS for file in gin_arguments(arguments)[0]}
    assert {"personlab_resnet101.gin", "parts_resnet101.gin", "parts_resnet101_matching.gin", "smoke.gin"} <= shown


@pytest.mark.parametrize("where,arguments,after", TRAINING_COMMANDS, ids=[c[0] for c in TRAINING_COMMANDS])
def test_documented_training_commands_parse_into_a_task(where, arguments, after):
    """Gin files and bindings as shown: every binding names an existing parameter, and the recipes that
    refuse random initialisation (frozen batch norm) are shown with their ImageNet weights; a command shown
    with its `error: ...` line fails with that message."""
    files, bindings = gin_arguments(arguments)
    gin.clear_config()
    try:
        registry.parse_gin(files, bindings)
        network = config.experiment().options.network
        if after.startswith("error: "):
            with pytest.raises(ValueError) as refusal:
                network.check_initialisation()
            assert "error: " + str(refusal.value) == after
        else:
            network.check_initialisation()
    finally:
        gin.clear_config()


def own_keypoints_section() -> Tuple[str, List[str]]:
    """(the skeleton file's JSON, the commands) of docs/skeletons.md's "Your own keypoints", as shown."""
    text = (REPO / "docs" / "skeletons.md").read_text().split("## Your own keypoints")[1].split("\n## ")[0]
    skeleton_file = text.split("```json\n")[1].split("```")[0]
    block = text.split("```json\n")[1].split("```\n", 1)[1].split("```\n")[1]
    commands = block.replace("\\\n", " ").splitlines()
    return skeleton_file, [command for command in commands if command.startswith("python scripts/")]


def test_your_own_keypoints_runs_as_written(tmp_path):
    """The walkthrough from a COCO file declaring 5 keypoints of its own to overlay pictures, every command as
    the page shows it (run from a folder holding the repository's scripts/ and gin/): each exits 0, and the
    records, the oracle and the evaluation name the file's skeleton."""
    skeleton_file, commands = own_keypoints_section()
    assert len(commands) == 8 and [shlex.split(c)[1] for c in commands][-1] == "scripts/predict.py"
    (tmp_path / "figure_skeleton.json").write_text(skeleton_file)
    for folder in ("scripts", "gin"):
        (tmp_path / folder).symlink_to(REPO / folder)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", PYTHONPATH=str(REPO))
    summaries = {}
    for command in commands:
        arguments = shlex.split(command)
        process = subprocess.run([sys.executable, *arguments[1:]], cwd=tmp_path, env=env, capture_output=True,
                                 text=True, timeout=600)
        assert process.returncode == 0, f"{command}\n{process.stderr[-3000:]}"
        summaries[Path(arguments[1]).stem] = json.loads(process.stdout.strip().splitlines()[-1])
    for script in ("make_synthetic_coco", "create_tfrecords", "oracle_eval", "evaluate"):
        assert summaries[script]["skeleton"] == "figure", script
    assert summaries["oracle_eval"]["keypoints_AP"] > 0.8
    assert summaries["predict"]["images_processed"] == 3
    assert len(list((tmp_path / "figures" / "pictures").glob("*.png"))) == 3
