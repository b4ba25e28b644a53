"""The package's shape: imports flow one way (no cycle between modules, imports inside
functions included), no module grows past 450 lines and no function past 80. The repository's text: no
development-log phrases, a README that stays a front door, no broken relative link in
README.md or docs/."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MAX_LINES = 450
MAX_FUNCTION_LINES = 80


def package_dirs() -> dict[str, Path]:
    """Package name -> source folder, as pyproject.toml maps them for setuptools."""
    if sys.version_info < (3, 11):
        pytest.skip("tomllib needs Python 3.11")
    import tomllib

    setup = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    mapping = setup.get("package-dir", {})

    def folder(pkg: str) -> Path:
        parent = max(
            (p for p in mapping if pkg == p or pkg.startswith(p + ".")), key=len, default=None
        )
        if parent is None:
            return REPO / pkg.replace(".", "/")
        return REPO / mapping[parent] / pkg[len(parent) + 1 :].replace(".", "/")

    return {pkg: folder(pkg) for pkg in setup["packages"]}


def modules() -> dict[str, Path]:
    """Every module of interpeq -> its file."""
    out = {}
    for pkg, folder in package_dirs().items():
        if pkg.startswith("interpeq.configs"):
            continue  # YAML data
        for path in sorted(folder.glob("*.py")):
            name = pkg if path.stem == "__init__" else f"{pkg}.{path.stem}"
            out[name] = path
    return out


def imported(module: str, path: Path, known: set[str]) -> set[str]:
    """interpeq modules that ``module`` imports anywhere in its file."""
    is_pkg = path.name == "__init__.py"
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")[: len(module.split(".")) - node.level + is_pkg]
                base = ".".join(parts + ([base] if base else []))
            names = [
                f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names
            ]
        else:
            continue
        out |= {n for n in names if n in known and n != module}
    return out


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycle_between_modules():
    mods = modules()
    assert "interpeq.callbacks.tracker" in mods and "interpeq.compare.run" in mods
    graph = {m: imported(m, p, set(mods)) for m, p in mods.items()}
    assert "interpeq.equivalence" in graph["interpeq.callbacks.tracker"]
    assert cycles(graph) == []


def test_cycle_finder_sees_function_level_imports(tmp_path):
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("import pkg.b\n")
    b.write_text("def f():\n    from pkg.a import x\n")
    known = {"pkg.a", "pkg.b"}
    graph = {"pkg.a": imported("pkg.a", a, known), "pkg.b": imported("pkg.b", b, known)}
    assert cycles(graph) == [["pkg.a", "pkg.b"]]


def test_callbacks_depend_on_equivalence_not_on_compare():
    mods = modules()
    graph = {m: imported(m, p, set(mods)) for m, p in mods.items()}
    for name in ("interpeq.callbacks.tracker", "interpeq.callbacks.capture"):
        assert not {d for d in graph[name] if d.startswith(("interpeq.compare", "interpeq.demo"))}


def test_no_module_over_450_lines():
    long = {
        m: n for m, p in modules().items() if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert long == {}


def long_functions(path: Path, limit: int = MAX_FUNCTION_LINES) -> dict[str, int]:
    """``qualified name -> lines`` of the functions in ``path`` longer than ``limit``
    (decorators excluded, docstring included)."""
    out = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    n = child.end_lineno - child.lineno + 1
                    if n > limit:
                        out[name] = n
                visit(child, name + ".")

    visit(ast.parse(path.read_text()), "")
    return out


def test_no_function_over_80_lines():
    long = {f"{m}.{f}": n for m, p in modules().items() for f, n in long_functions(p).items()}
    assert long == {}


def test_function_length_check_sees_methods_and_nested_functions(tmp_path):
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    src = tmp_path / "m.py"
    src.write_text(f"class A:\n    def f(self):\n    {body.replace(chr(10), chr(10) + '    ')}\n"
                   f"def g():\n    def h():\n    {body.replace(chr(10), chr(10) + '    ')}\n"
                   "    return h\n")  # fmt: skip
    assert set(long_functions(src)) == {"A.f", "g", "g.h"}


SHIM_WORDS = re.compile(
    r"moved to :mod:|this name stays|for existing imports|kept for old imports|re-exported"
    r"|noqa: F401\s+\((?:[^)]*)re-export",
    re.IGNORECASE,
)


def test_no_compatibility_shim_or_re_export():
    """Each name has one import path: no module that only forwards to another ("moved
    to"), no alias kept for old imports."""
    hits = [
        f"{m}:{k + 1}"
        for m, p in modules().items()
        for k, line in enumerate(p.read_text().splitlines())
        if SHIM_WORDS.search(line)
    ]
    assert hits == []
    assert SHIM_WORDS.search('"""Moved to :mod:`a.b`; this name stays for existing imports."""')
    assert SHIM_WORDS.search("from a import b  # noqa: F401  (re-exported)")


def test_every_package_folder_is_installed():
    """An unlisted package folder would be missing from a wheel (the list is explicit)."""
    listed = set(package_dirs().values())
    folders = {p.parent for p in (REPO / "interpeq").rglob("__init__.py")}
    folders |= {REPO / "callbacks", REPO / "configs"}
    folders |= {p.parent for p in (REPO / "configs").glob("*/*.yaml")}
    assert folders - listed == set()


# The repository's text speaks of the product, not of how it was developed, and cites
# docs/method.md (which ships) rather than a specification that does not.
DEV_LOG_PHRASES = (
    "this session",
    "these sessions",
    "was lent",
    "no GPU was lent",
    "SPEC section",
    "SPEC §",
    "the issue's",
    "by the issue",
    "issue #",
)
TEXT_ROOTS = ("README.md", "docs", "interpeq", "callbacks", "configs", "benchmarks")
TEXT_SUFFIXES = {".py", ".md", ".yaml", ".yml", ".txt", ".toml", ".cfg", ".json", ".sh"}
README_MAX_WORDS = 2600
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def text_files() -> list[Path]:
    out = []
    for name in TEXT_ROOTS:
        root = REPO / name
        found = [root] if root.is_file() else sorted(root.rglob("*"))
        for path in found:
            if path.is_file() and path.suffix in TEXT_SUFFIXES and "__pycache__" not in path.parts:
                out.append(path)
    return out


def test_text_has_no_development_log_phrases():
    hits = []
    for path in text_files():
        text = path.read_text(encoding="utf-8", errors="replace").lower()
        for phrase in DEV_LOG_PHRASES:
            if phrase.lower() in text:
                line = text[: text.index(phrase.lower())].count("\n") + 1
                hits.append(f"{path.relative_to(REPO)}:{line}: {phrase!r}")
    assert not hits, "development-log phrases in the repository's text:\n" + "\n".join(hits)


def test_readme_is_a_front_door():
    words = len((REPO / "README.md").read_text(encoding="utf-8").split())
    assert words <= README_MAX_WORDS, f"README.md has {words} words (at most {README_MAX_WORDS})"


def relative_links(path: Path) -> list[str]:
    text = re.sub(r"```.*?```", "", path.read_text(encoding="utf-8"), flags=re.S)
    targets = []
    for target in LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, flags=re.I) or target.startswith("#"):
            continue  # a URL (http:, mailto:, ...) or an anchor in the same page
        targets.append(target.split("#", 1)[0])
    return targets


def test_every_relative_link_in_readme_and_docs_exists():
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    broken = [
        f"{page.relative_to(REPO)}: {target}"
        for page in pages
        for target in relative_links(page)
        if not (page.parent / target).exists()
    ]
    assert not broken, "broken relative links:\n" + "\n".join(broken)


def test_link_checker_sees_relative_links(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "[a](docs/x.md#sec) [b](https://example.org) [c](#top) ![d](fig.png)\n"
        "```\n[e](inside/code.md)\n```\n"
    )
    assert relative_links(page) == ["docs/x.md", "fig.png"]


# the math of the forward pass and the loss, as written in interpeq.models.functional
FORWARD_PASS_MATH = {
    "layer norm": re.compile(r"pow\(2\)\.mean\(-1"),
    "attention scores": re.compile(r"hqk|@ k\.transpose|k\.transpose\(-1, -2\)"),
    "masked cross-entropy": re.compile(r"log_softmax\(-1\)\.gather"),
    "activation table": re.compile(r"approximate=\"tanh\""),
}


def forward_pass_copies(paths: dict[str, Path]) -> dict[str, list[str]]:
    return {
        name: [m for m, p in paths.items() if pattern.search(p.read_text())]
        for name, pattern in FORWARD_PASS_MATH.items()
    }


def test_forward_pass_is_written_once():
    found = forward_pass_copies(modules())
    assert found == {name: ["interpeq.models.functional"] for name in FORWARD_PASS_MATH}


def test_forward_pass_check_sees_a_copy(tmp_path):
    copy = tmp_path / "copy.py"
    copy.write_text("def ln(x):\n    return x / (x.pow(2).mean(-1, keepdim=True) + 1e-5).sqrt()\n")
    assert forward_pass_copies({"copy": copy})["layer norm"] == ["copy"]


def test_the_tests_defaults_are_declared_once():
    """alpha, m and the bootstrap size are read from interpeq.equivalence.defaults."""
    literal = re.compile(
        r"alpha: float = 0\.05|\bm: int = 40\b|n_boot: int = 1000|not 0 < alpha < 1"
    )
    found = [m for m, p in modules().items() if literal.search(p.read_text())]
    found += [p.name for p in (REPO / "callbacks").glob("*.py") if literal.search(p.read_text())]
    assert found == []
