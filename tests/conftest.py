from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ROOT / "citychain" / "scenarios"


@pytest.fixture(scope="session")
def taihu_path() -> Path:
    return SCENARIOS / "taihu.yaml"
