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


def test_every_locked_package_admits_python_3_11_0_to_3_13():
    """The lock installs on every Python the course supports, Debian 12's 3.11.2 included (a pin
    such as soupsieve 4.x, which needs 3.11.5, would not): judged from the installed packages'
    Requires-Python."""
    from importlib import metadata

    from packaging.specifiers import SpecifierSet

    lock = _pins((ROOT / "requirements.lock").read_text().splitlines())
    refused = {}
    for name, version in lock.items():
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            continue   # not installed here (e.g. a platform-only dependency)
        if dist.version != version:
            continue   # this venv holds another version: its metadata says nothing about the pin
        spec = SpecifierSet(dist.metadata.get("Requires-Python") or "")
        if bad := [v for v in ("3.11.0", "3.12.0", "3.13.0") if v not in spec]:
            refused[f"{name}=={version}"] = (str(spec), bad)
    assert not refused, f"pins whose Requires-Python refuses a supported Python: {refused}"
