"""The pip pins, the conda environment and the lock agree, so conda and pip users get the same course."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pins(lines) -> dict[str, str]:
    pins = {}
    for line in lines:
        line = line.split("#")[0].strip().lstrip("- ").strip()
        if match := re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line):
            pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def test_environment_yml_names_the_same_packages_and_versions_as_requirements():
    requirements = _pins((ROOT / "requirements.txt").read_text().splitlines())
    environment = _pins((ROOT / "environment.yml").read_text().splitlines())
    assert requirements, "requirements.txt pins nothing"
    assert environment == requirements, (
        f"only in requirements.txt: {sorted(requirements.items() - environment.items())}; "
        f"only in environment.yml: {sorted(environment.items() - requirements.items())}")


def test_the_lock_agrees_with_every_top_level_pin():
    requirements = _pins((ROOT / "requirements.txt").read_text().splitlines())
    lock = _pins((ROOT / "requirements.lock").read_text().splitlines())
    disagree = {name: (version, lock.get(name)) for name, version in requirements.items() if lock.get(name) != version}
    assert not disagree, f"requirements.txt and requirements.lock disagree (pin, lock): {disagree}"


def test_environment_yml_asks_for_python_3_11():
    assert re.search(r"^\s*-\s*python=3\.11\s*$", (ROOT / "environment.yml").read_text(), re.M)
