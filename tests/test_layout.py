"""The house rules that a reader of the code relies on: short functions, and optional
libraries that importing moviebarcode never loads. (The import layers are checked by
import-linter in ./scripts/test; see pyproject.toml.)"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).parents[1] / "src" / "moviebarcode"
MAX_LINES = 80


def test_no_function_is_longer_than_80_lines():
    long = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_LINES:
                    long.append(f"{path.relative_to(SRC)}:{node.name} ({lines} lines)")
    assert not long, long


def test_importing_never_loads_the_optional_extras():
    code = (
        "import sys, moviebarcode.cli, moviebarcode.dask_backend, moviebarcode.engines\n"
        "extras = ('cupy', 'cuml', 'kvikio', 'dask', 'distributed', 'sklearn')\n"
        "print(' '.join(m for m in extras if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
