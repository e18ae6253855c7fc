"""The command-line layer (personlab_tf/cli.py): a script's summary is its last stdout line, a user's error one
line on stderr with exit code 1, anything else a traceback."""

import dataclasses
import subprocess
import sys
import textwrap

import pytest

from personlab_tf import cli


def run_main(tmp_path, body, *arguments):
    """Runs a script whose main is `body` under cli.run; returns the CompletedProcess."""
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(f"""
        from personlab_tf import cli

        def main():
        {textwrap.indent(textwrap.dedent(body), '    ')}

        cli.run(main)
        """))
    return subprocess.run([sys.executable, str(script), *arguments], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("body, code, stdout_last, stderr_last", [
    ("print('progress'); return {'ap': 0.5}", 0, '{"ap": 0.5}', None),
    ("raise FileNotFoundError('no checkpoint in runs/x')", 1, None, "error: no checkpoint in runs/x"),
    ("raise ValueError('first\\n  In call to configurable \\'X\\'\\nsecond')", 1, None, "error: first second"),
    ("raise KeyError('a bug')", 1, None, "KeyError: 'a bug'"),
])
def test_summaries_and_errors(tmp_path, body, code, stdout_last, stderr_last):
    process = run_main(tmp_path, body)
    assert process.returncode == code
    if stdout_last is not None:
        assert process.stdout.strip().splitlines()[-1] == stdout_last
    if stderr_last is not None:
        assert process.stderr.strip().splitlines()[-1] == stderr_last
    assert ("Traceback" in process.stderr) == (body.startswith("raise KeyError"))


def test_positional_arguments_are_refused_in_one_line(tmp_path):
    process = run_main(tmp_path, "return {}", "extra")
    assert process.returncode == 1 and process.stderr.strip().splitlines()[-1] == (
        "error: unexpected arguments extra (flags are --name=value)")


def test_the_inference_flags_are_inference_options():
    """Every flag overrides the field of the same name of PersonLab's inference options; the part parser's has
    the frame only (the other flags are refused for it: test_export_saved_model)."""
    from personlab_tf.tasks.parts.detector import PartsInference
    from personlab_tf.tasks.personlab.detector import PersonLabInference
    assert set(cli.INFERENCE_FLAGS) <= {field.name for field in dataclasses.fields(PersonLabInference)}
    assert set(cli.INFERENCE_FLAGS) & {field.name for field in dataclasses.fields(PartsInference)} == {"max_side"}
