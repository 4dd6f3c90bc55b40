"""Start-up: `citychain --help` and a small run do not import the heavy modules they do
not use (matplotlib, numpy, the MQTT client, psutil, asyncio). Checked in a fresh
interpreter, as pytest itself has imported much already. Tests never assert speed."""

import json
import subprocess
import sys

HEAVY = ("matplotlib", "numpy", "aiomqtt", "paho", "psutil", "asyncio")


def _loaded(code: str) -> list[str]:
    probe = code + f"\nimport json, sys\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_importing_the_cli_loads_no_heavy_module():
    assert _loaded("import citychain.cli") == []
    # --help needs no scenario model either (pydantic and the apps)
    assert _loaded("import citychain.cli, sys\nassert 'citychain.scenario' not in sys.modules") == []


def test_a_four_node_run_loads_no_heavy_module():
    code = ("from citychain.cli import main\n"
            "try:\n    main(['run', 'normal-4', '--json', '--no-progress'])\n"
            "except SystemExit as exc:\n    assert exc.code == 0, exc.code\n")
    assert _loaded(code) == []
