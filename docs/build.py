"""Build the documentation offline: execute the example notebooks, then Sphinx with warnings as errors.

    python docs/build.py [OUT]          # HTML into OUT (default docs/_build/html)
    python docs/build.py --no-execute   # notebooks rendered without outputs (fast)

The notebooks are jupytext percent scripts in ``examples/``.  Each is executed once, headless, by
:func:`execute` (jupytext reads the script, nbclient runs it in an IPython kernel with the
working directory ``examples/``), and the executed notebook -- code, text, printed output and
plots -- is what Sphinx renders (myst-nb with execution off).  ``tests/integration/test_notebooks.py``
calls the same :func:`execute`; executed notebooks are kept in :data:`EXECUTED` for the life of the
process, so a test session that runs both the notebook tests and the docs build executes each
notebook once.  Needs the ``docs`` extra: ``pip install -e '.[docs]'``.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
EXAMPLES = ROOT / "examples"
TIMEOUT_S = 900  # per cell: the LLM notebook's cold tile characterisation on a loaded 2-core machine
#: name -> (executed notebook, seconds it took)
EXECUTED: dict[str, tuple[object, float]] = {}


def notebooks() -> list[Path]:
    """The example notebooks, ``examples/NN_name.py``, in order."""
    return sorted(p for p in EXAMPLES.glob("[0-9][0-9]_*.py"))


def read(path: Path):
    """The notebook of a jupytext percent script (no outputs)."""
    import jupytext

    return jupytext.read(path, fmt="py:percent")


def execute(path: Path, *, timeout: int = TIMEOUT_S):
    """Execute one notebook headless; return ``(notebook, seconds)``.  Cached per process.

    Raises ``nbclient.exceptions.CellExecutionError`` (with the cell's traceback) when a cell fails.
    """
    from nbclient import NotebookClient

    path = Path(path)
    if path.name not in EXECUTED:
        nb = read(path)
        start = time.perf_counter()
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(EXAMPLES)}}).execute()
        EXECUTED[path.name] = (nb, time.perf_counter() - start)
    return EXECUTED[path.name]


def stage(dest: Path, *, run: bool = True) -> Path:
    """Copy the Sphinx sources to ``dest`` with every notebook as ``examples/NN_name.ipynb``."""
    import nbformat

    shutil.copytree(DOCS, dest, ignore=shutil.ignore_patterns("_build", "__pycache__", "build.py", "make_figures.py"),
                    dirs_exist_ok=True)
    (dest / "examples").mkdir(exist_ok=True)
    for path in notebooks():
        nb = execute(path)[0] if run else read(path)
        nbformat.write(nb, dest / "examples" / f"{path.stem}.ipynb")
    shutil.copyfile(EXAMPLES / "README.md", dest / "examples" / "README.md")
    return dest


def build(out: Path, *, run: bool = True) -> int:
    """Stage the sources and run Sphinx (HTML, ``-W --keep-going``); return its exit status."""
    from sphinx.cmd.build import build_main

    with tempfile.TemporaryDirectory() as tmp:
        src = stage(Path(tmp) / "src", run=run)
        return build_main(["-W", "--keep-going", "-q", "-b", "html", str(src), str(out)])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", nargs="?", type=Path, default=DOCS / "_build" / "html")
    parser.add_argument("--no-execute", action="store_true", help="render the notebooks without running them")
    args = parser.parse_args(argv)
    rc = build(args.out, run=not args.no_execute)
    if rc == 0:
        print(f"wrote {args.out / 'index.html'}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
