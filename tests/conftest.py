from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "citychain" / "scenarios"


@pytest.fixture(scope="session")
def taihu_path() -> Path:
    return SCENARIOS / "taihu.yaml"


def pytest_collection_modifyitems(items):
    """Slow tests first: under `pytest -n 2` they then overlap with the rest of the suite."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
