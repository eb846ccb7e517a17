"""app/modules.py: the page's modules read from their own import statements, for `<link rel="modulepreload">`."""

from __future__ import annotations

from pathlib import Path

from app.modules import module_closure, static_imports

STATIC_JS = Path(__file__).parent.parent / "static" / "js"


def test_static_imports_are_read_in_order_and_dynamic_ones_left_out() -> None:
    source = """// import { no } from './comment.js';
import * as api from './api.js';
import {
  a,
  b,
} from "./multi-line.js";
import './side-effect.js';
export { c } from './re-export.js';
const later = () => import('./dynamic.js');
import { x } from 'https://elsewhere.example/x.js';
"""
    assert static_imports(source) == ["api.js", "multi-line.js", "side-effect.js", "re-export.js"]


def test_the_closure_follows_imports_once_each(tmp_path: Path) -> None:
    (tmp_path / "main.js").write_text("import { a } from './a.js';\nimport { b } from './b.js';\n")
    (tmp_path / "a.js").write_text("import { c } from './c.js';\nexport const a = 1;\n")
    (tmp_path / "b.js").write_text("import { a } from './a.js';\nexport const b = 2;\n")
    (tmp_path / "c.js").write_text("export const c = 3;\n")
    (tmp_path / "unused.js").write_text("export const u = 0;\n")
    assert module_closure(tmp_path) == ["main.js", "a.js", "c.js", "b.js"]


def test_the_page_closure_holds_its_entry_and_what_it_draws_with() -> None:
    modules = module_closure(STATIC_JS)
    assert modules[0] == "main.js" and len(modules) == len(set(modules))
    assert {"diagram.js", "layout.js", "plotly-loader.js", "focus.js"} <= set(modules)
