"""The page's ES modules that load with it: every module main.js imports, directly or through another, read from the
import statements themselves, so the page can ask for all of them at once (`<link rel="modulepreload">`) instead of
discovering them one import after another (issue 24: about 40 fetched in turn on a busy machine). No build step:
the JS files stay the one place that says what imports what. Dynamic `import()`s are left out, as they load later.
"""

from __future__ import annotations

import re
from pathlib import Path

# `import … from './x.js'`, `import './x.js'`, `export … from './x.js'`: static imports of a sibling module only.
_STATIC_IMPORT = re.compile(r"^\s*(?:import|export)\s(?:[^;'\"]*?\sfrom\s)?\s*['\"]\./([\w.-]+\.js)['\"]", re.M)


def static_imports(source: str) -> list[str]:
    """The sibling modules `source` imports statically, in the order written."""
    return _STATIC_IMPORT.findall(source)


def module_closure(js_dir: Path, entry: str = "main.js") -> list[str]:
    """`entry` and every module it reaches through static imports, depth first, each once (file names in js_dir)."""
    seen: list[str] = []
    stack = [entry]
    while stack:
        name = stack.pop()
        path = js_dir / name
        if name in seen or not path.is_file():
            continue
        seen.append(name)
        stack.extend(reversed(static_imports(path.read_text(encoding="utf-8"))))
    return seen
