"""The newcomer's contract: the README's "Set up" section gives two commands, and CI runs the second
one verbatim (a README whose test command lacks an install step failed on a fresh machine with
`No module named pytest` while CI, which installed the extras itself, stayed green)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def setup_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Set up", 1)[1].split("\n## ", 1)[0]
    return [block.strip() for block in re.findall(r"```bash\n(.*?)```", section, flags=re.S)]


def test_readme_gives_two_setup_commands_install_and_run():
    main_job, tests = setup_commands()
    assert main_job == "pip install -e . && harness compare"
    assert "\n" not in tests, "the test command is one line"
    assert tests.startswith("python3 -m pip install -e \".[test,train]\"") and tests.endswith("python3 -m pytest tests")


def test_ci_runs_exactly_the_readme_test_command():
    ci_lines = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    commands = [line for line in ci_lines if line and not line.startswith("#")]
    assert commands[-1] == setup_commands()[1]
    # before it, CI only installs the CPU build of torch (so the extras do not pull a CUDA build)
    installs = [line for line in commands if line.startswith("python3 -m pip install") and line != commands[-1]]
    assert installs == ["python3 -m pip install --quiet torch==2.13.0"]


def test_the_test_extra_holds_what_the_tests_import():
    pyproject = (ROOT / "pyproject.toml").read_text()
    test_extra = re.search(r"^test = \[(.*?)\]", pyproject, flags=re.M).group(1)
    for package in ("pytest", "nats-bench", "nbclient", "nbformat", "ipykernel", "ray"):
        assert f'"{package}' in test_extra, package
    assert re.search(r"^notebooks = \[.*jupyterlab", pyproject, flags=re.M)
