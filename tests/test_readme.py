"""The README's two set-up commands are the ones CI runs."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    setup = text.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    return [b.strip() for b in re.findall(r"```bash\n(.*?)```", setup, flags=re.S)]


def test_readme_has_exactly_two_setup_commands():
    commands = _readme_commands()
    assert len(commands) == 2, commands
    assert all("\n" not in c for c in commands), "each set-up step is one command line"


def test_ci_runs_the_readme_test_command():
    test_command = _readme_commands()[1]
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines, f"{test_command!r} is not a line of .ci/run"


def test_ci_installs_what_the_readme_installs():
    install = _readme_commands()[0].split("&&")[0].strip()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "requirements.txt" in install and "requirements.txt" in ci


def test_readme_python_examples_run(capsys):
    # the README's code runs as written (its asserts included) and prints what it says
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), flags=re.S)
    assert blocks
    for block in blocks:
        exec(compile(block, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "Matrix([[1, 0, -1, 0], [0, 1, 1, 0]" in out


def test_readme_speed_table_is_the_recorded_benchmark():
    import json

    from winolab import results

    bench = ROOT / "results" / "bench_sparse_cpu1.json"
    block = results.bench_block(json.loads(bench.read_text()))
    assert block in (ROOT / "README.md").read_text(), "run python scripts/update_results.py"


def test_every_generated_readme_block_is_fresh():
    from conftest import load_script

    text = (ROOT / "README.md").read_text()
    blocks = load_script("update_results").readme_blocks(ROOT)
    assert len(blocks) == 4  # reduced-scale, speed, CIFAR-10 and CIFAR-100 paper scale
    for block in blocks:
        assert block in text, f"{block.splitlines()[0]}: run python scripts/update_results.py"
