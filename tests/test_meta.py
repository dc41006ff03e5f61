"""Meta tests: the rules of the project that no single feature test would catch.

(a) every hookspec is documented in docs/hooks.md as ``### name(args)`` with the
    spec's argument names, and the page documents no hook that does not exist;
(b) every hookspec has a test function named ``test_hook_<name>``;
(c) nothing imports a top-level ``plugins`` package, and neither ``plugins``
    nor ``locale`` is made a package (``locale`` would shadow the standard library);
(d) every bundled plugin package ``plugins/<name>/crm_<name>/`` is shipped in the
    wheel and declared as a ``crm.plugins`` entry point, and nothing else is;
(e) ``pm.check_pending()`` passes with every discovered plugin enabled.
"""

import ast
import inspect
import re
import tomllib
from pathlib import Path


from crm_core import hookspecs
from crm_core.plugins import discover, hookspecs_of, load_manifest

ROOT = Path(__file__).resolve().parent.parent
HOOKS_DOC = ROOT / "docs" / "hooks.md"
PYPROJECT = ROOT / "pyproject.toml"
# Folders that are not the project's own source.
SKIP_DIRS = {".venv", "venv", ".git", "build", "dist", "__pycache__", ".tox", ".nox", ".eggs",
             "node_modules", "instance", ".pytest_cache", ".hypothesis", ".mypy_cache",
             ".ruff_cache", "htmlcov"}
# Plugins that must not be enabled by the check_pending test (they fail on purpose).
NOT_ENABLED = {"broken"}
HEADING = re.compile(r"^(#{1,6})\s+`?(crm_\w+)\s*\((.*?)\)`?\s*$")


def signatures(module):
    """{hook name: [argument names]} for every hookspec of ``module``, in file order."""
    return {name: list(inspect.signature(spec).parameters) for name, spec in hookspecs_of(module).items()}


def hookspec_signatures():
    """{hook name: [argument names]} for every hookspec of crm_core.hookspecs, in file order."""
    return signatures(hookspecs)


def test_there_are_hookspecs_to_check():
    specs = hookspec_signatures()
    assert "crm_register_models" in specs
    assert specs["crm_page_slot"] == ["app", "slot", "actor", "context"]


def python_files():
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if any(part in SKIP_DIRS or part.endswith(".egg-info") for part in parts[:-1]):
            continue
        yield path


def parse(path):
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


# -- (a) every hookspec is documented, nothing else is ---------------------------------------

def documented_hooks():
    """[(line number, heading level, hook name, [argument names])] of docs/hooks.md."""
    found, in_code = [], False
    for number, line in enumerate(HOOKS_DOC.read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        match = None if in_code else HEADING.match(line.rstrip())
        if match:
            level, name, args = match.groups()
            found.append((number, len(level), name,
                          [a.strip() for a in args.split(",") if a.strip()]))
    return found


def test_every_hookspec_is_documented_with_its_arguments():
    assert HOOKS_DOC.is_file(), "docs/hooks.md is missing"
    specs = hookspec_signatures()
    documented = documented_hooks()
    problems = []
    for number, level, name, args in documented:
        where = f"docs/hooks.md:{number}"
        if name not in specs:
            problems.append(f"{where}: documents {name}, which is not a hookspec in "
                            "crm_core/hookspecs.py (a plugin's own hooks belong in its README)")
        elif level != 3:
            problems.append(f"{where}: the heading of {name} must be '### {name}(...)'")
        elif args != specs[name]:
            problems.append(f"{where}: '### {name}({', '.join(args)})' but the hookspec's "
                            f"arguments are ({', '.join(specs[name])})")
    names = [name for _, _, name, _ in documented]
    for name in sorted({n for n in names if names.count(n) > 1}):
        problems.append(f"docs/hooks.md documents {name} {names.count(name)} times")
    for name, args in specs.items():
        if name not in names:
            problems.append(f"{name} is not documented: add a section "
                            f"'### {name}({', '.join(args)})' to docs/hooks.md")
    assert not problems, "\n".join(problems)


# -- (b) every hookspec has a test_hook_<name> ----------------------------------------------

def collect_test_files():
    files = [p for p in (ROOT / "tests").rglob("*.py")]
    for plugin_tests in (ROOT / "plugins").glob("*/tests"):
        files.extend(plugin_tests.rglob("*.py"))
    return sorted(p for p in files
                  if not any(part in SKIP_DIRS for part in p.relative_to(ROOT).parts))


def defined_test_names(path):
    """Names of test functions pytest would collect: module level and in Test* classes."""
    tree = parse(path)
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            names.update(item.name for item in node.body
                         if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)))
    return names


def test_every_hookspec_has_a_test():
    defined = set()
    for path in collect_test_files():
        defined |= defined_test_names(path)
    missing = [f"test_hook_{name}" for name in hookspec_signatures()
               if f"test_hook_{name}" not in defined]
    assert not missing, ("hookspecs without a test (write one under tests/ or "
                         f"plugins/*/tests/ that proves the hook's effect): {', '.join(missing)}")


def bundled_plugin_hookspecs():
    """{plugin folder: {hook name: [argument names]}} of the hooks bundled plugins offer."""
    import importlib

    found = {}
    for name, source in sorted(discover().items()):
        if not source.bundled:
            continue
        _, manifest = load_manifest(source)
        if not manifest.hookspecs:
            continue
        found[name] = signatures(importlib.import_module(manifest.hookspecs))
    return found


def test_every_hook_a_bundled_plugin_offers_is_documented_in_its_readme_and_tested():
    defined = set()
    for path in collect_test_files():
        defined |= defined_test_names(path)
    problems = []
    for plugin, specs in bundled_plugin_hookspecs().items():
        readme = (ROOT / "plugins" / plugin / "README.md").read_text(encoding="utf-8")
        headings = {m.group(2): [a.strip() for a in m.group(3).split(",") if a.strip()]
                    for m in map(HEADING.match, readme.splitlines()) if m}
        for name, args in specs.items():
            if headings.get(name) != args:
                problems.append(f"plugins/{plugin}/README.md: no heading '### {name}({', '.join(args)})'")
            if f"test_hook_{name}" not in defined:
                problems.append(f"{name}: no test named test_hook_{name}")
    assert not problems, "\n".join(problems)


# -- (c) no top-level "plugins" package, no "locale" package -----------------------------------

def imports_of_plugins_package(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "plugins" or alias.name.startswith("plugins."):
                    yield node.lineno, f"import {alias.name}"
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "plugins" or node.module.startswith("plugins."):
                yield node.lineno, f"from {node.module} import ..."


def test_the_import_check_sees_every_form():
    tree = ast.parse("import plugins\nimport plugins.territory as t\nfrom plugins import x\n"
                     "from plugins.pricing.crm_pricing import y\nfrom . import plugins\n"
                     "import crm_plugins\nfrom crm_core import plugins\n"
                     "def f():\n    import plugins.commission\n")
    assert [line for line, _ in imports_of_plugins_package(tree)] == [1, 2, 3, 4, 9]


def test_nothing_imports_a_top_level_plugins_package():
    problems = []
    for path in python_files():
        relative = path.relative_to(ROOT)
        try:
            tree = parse(path)
        except SyntaxError as exc:
            problems.append(f"{relative}:{exc.lineno}: cannot be parsed: {exc.msg}")
            continue
        for line, text in imports_of_plugins_package(tree):
            problems.append(f"{relative}:{line}: {text} (import the plugin's own package "
                            "crm_<name> instead; there is no 'plugins' package)")
    assert not problems, "\n".join(problems)


def test_plugins_and_locale_are_not_packages():
    # the repository root and each plugin project folder can end up on sys.path
    roots = [ROOT] + plugin_project_folders()
    offending = [str((root / folder / "__init__.py").relative_to(ROOT))
                 for root in roots for folder in ("plugins", "locale")
                 if (root / folder / "__init__.py").exists()]
    assert not offending, (f"remove {', '.join(offending)}: a 'plugins' package would be "
                           "imported instead of the plugins' own packages, and a 'locale' "
                           "package shadows the standard library's locale module")


# -- (d) bundled plugins are shipped and declared ------------------------------------------------

def plugin_project_folders():
    folder = ROOT / "plugins"
    return sorted(p for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def bundled_plugin_folders():
    """{name: path} of every plugins/<name>/crm_<name>/ package folder."""
    return {folder.name: folder / f"crm_{folder.name}" for folder in plugin_project_folders()
            if (folder / f"crm_{folder.name}").is_dir()}


def test_every_bundled_plugin_is_shipped_and_declared():
    with PYPROJECT.open("rb") as handle:
        project = tomllib.load(handle)
    packages = project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    entry_points = project["project"].get("entry-points", {}).get("crm.plugins", {})
    folders = bundled_plugin_folders()
    problems = []
    if "crm_core" not in packages:
        problems.append("pyproject.toml: 'crm_core' is missing from "
                        "[tool.hatch.build.targets.wheel] packages")
    shipped = {}
    for package in packages:
        if package == "crm_core":
            continue
        match = re.fullmatch(r"plugins/(\w+)/crm_(\w+)", package)
        if not match or match.group(1) != match.group(2):
            problems.append(f"pyproject.toml: wheel package {package!r} is not "
                            "'plugins/<name>/crm_<name>'")
            continue
        shipped[match.group(1)] = package
        if not (ROOT / package / "__init__.py").is_file():
            problems.append(f"pyproject.toml: wheel package {package!r} does not exist "
                            f"(no {package}/__init__.py)")
    for name in folders:
        expected = f"plugins/{name}/crm_{name}"
        if name not in shipped:
            problems.append(f"plugins/{name}/crm_{name}/ is not shipped: add {expected!r} to "
                            "[tool.hatch.build.targets.wheel] packages")
        if entry_points.get(name) != f"crm_{name}":
            problems.append(f"plugins/{name}/crm_{name}/ is not declared: add "
                            f'{name} = "crm_{name}" to [project.entry-points."crm.plugins"]'
                            + (f" (found {entry_points[name]!r})" if name in entry_points else ""))
    for name, target in entry_points.items():
        if name not in folders:
            problems.append(f'pyproject.toml: entry point {name} = "{target}" has no package '
                            f"folder plugins/{name}/crm_{name}/")
    for name, package in shipped.items():
        if name not in entry_points:
            problems.append(f"pyproject.toml: {package!r} is shipped but not declared in "
                            '[project.entry-points."crm.plugins"]')
    assert not problems, "\n".join(problems)


# -- (e) every plugin's hook implementations match the hookspecs ------------------------------------

def test_check_pending_passes_with_every_plugin(app_factory):
    available = discover()
    names = sorted(set(available) - NOT_ENABLED)
    assert {"notes", "tags"} <= set(names)
    # Required settings have no default; give each a placeholder so the app can start.
    config = {}
    for name in names:
        _, manifest = load_manifest(available[name])
        if manifest.required_settings:
            config[name] = {setting: "meta-test" for setting in manifest.required_settings}
    app = app_factory(CRM_PLUGINS=names, CRM_PLUGIN_CONFIG=config, migrate_schema=False)
    host = app.extensions["crm"]
    assert sorted(host.names) == names
    host.pm.check_pending()
    # every registered module is one of ours: the core's parts and the enabled plugins
    registered = {name for name, _ in host.pm.list_name_plugin()}
    assert set(names) <= registered
    assert all(name in names or name.startswith("core.") for name in registered)
