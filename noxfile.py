"""Test sessions: one per package, the assembled system, lint, typecheck, benchmarks.

Run everything with ``python3 -m nox``; one package with ``python3 -m nox -s core``.
"""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.sessions = [
    "core", "grpc_server", "auth", "watchdog", "data_cache", "agent", "cli", "studio",
    "integration", "lint", "typecheck",
]
nox.options.reuse_existing_virtualenvs = True
nox.options.error_on_missing_interpreters = True

PYTHON = "3.11"
CONSTRAINTS = ("-c", "constraints.txt")
TEST_DEPS = ("pytest", "pytest-timeout", "hypothesis")
# What each package's tests need besides the package itself (all from this repository).
PACKAGE_NEEDS: dict[str, tuple[str, ...]] = {
    "core": ("torch", "pandas", "pyarrow", "scikit-learn"),
    "grpc_server": ("packages/auth", "packages/data_cache", "grpcio-tools", "torch", "pandas"),
    "auth": ("packages/grpc_server", "packages/cli"),
    "watchdog": ("packages/grpc_server", "packages/auth"),
    "data_cache": ("pandas", "torch"),  # torch: the preview test of a real tensor
    "agent": ("packages/grpc_server", "packages/auth", "packages/cli"),  # end-to-end over gRPC and the CLI
    "cli": ("packages/grpc_server", "packages/auth", "packages/watchdog", "packages/data_cache",
            "torch", "scikit-learn", "pandas"),
    "studio": ("packages/auth", "packages/grpc_server", "packages/data_cache", "packages/cli", "packages/agent", "torch",
               "scikit-learn", "pandas", "playwright", "hatchling"),
}


def _build_studio_ui(session: nox.Session) -> None:
    """The Studio's browser tests and benchmarks serve the built front end (never `playwright install`:
    they drive the system Chromium, which .ci/run installs)."""
    with session.chdir("packages/studio/frontend"):
        session.run("npm", "ci", "--no-audit", "--no-fund", external=True)
        session.run("npm", "run", "build", external=True)


def _studio_before_tests(session: nox.Session) -> None:
    """Build the UI, then the front end's unit tests (vitest; its query test checks chip text against the
    real core parser in this session's Python)."""
    _build_studio_ui(session)
    python = str(Path(session.bin) / "python")
    with session.chdir("packages/studio/frontend"):
        session.run("npm", "test", external=True, env={"WL_PYTHON": python, "PYTHON": python})


# Run before a package's tests.
BEFORE_TESTS = {"studio": _studio_before_tests}


def _pytest(session: nox.Session, *paths: str) -> None:
    # The root conftest.py applies WL_TEST_TIMEOUT (env or .env, default 30 s) as a hard per-test timeout.
    session.run("pytest", "-q", "-p", "no:cacheprovider", *paths, *session.posargs)


def _package_session(name: str) -> None:
    @nox.session(name=name, python=PYTHON)
    def run(session: nox.Session) -> None:
        needs = PACKAGE_NEEDS[name]
        local = ["-e", "packages/core", "-e", f"packages/{name}"]
        for need in needs:
            if need.startswith("packages/"):
                local += ["-e", need]
        remote = [need for need in needs if not need.startswith("packages/")]
        session.install(*CONSTRAINTS, *local, *remote, *TEST_DEPS)
        if name in BEFORE_TESTS:
            BEFORE_TESTS[name](session)
        _pytest(session, f"packages/{name}/tests")


for _name in PACKAGE_NEEDS:
    _package_session(_name)


@nox.session(python=PYTHON)
def integration(session: nox.Session) -> None:
    """The assembled system: ``.[all]`` plus the example third-party plugin."""
    session.install(*CONSTRAINTS, ".[all]", "examples/weightslab-example-plugin", *TEST_DEPS)
    _pytest(session, "tests")


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install(*CONSTRAINTS, "ruff")
    session.run("ruff", "check", "packages", "examples", "tests", "tools", "noxfile.py", "conftest.py")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    session.install(*CONSTRAINTS, "mypy", "types-PyYAML", *[f"-e{p}" for p in _all_packages()])
    session.run("mypy", *[f"packages/{p}/src" for p in PACKAGE_NEEDS])


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks; results (ratios against a baseline of the same run) go to bench-results/.

    ``nox -s bench -- scale`` runs one benchmark; the scale benchmark's 1M-sample case (about a
    minute) runs by default, ``WL_SCALE_BENCH_SIZES=10000,100000`` leaves it out."""
    session.install(*CONSTRAINTS, *[f"-e{p}" for p in _all_packages()], "torch", "pandas", "scikit-learn",
                    "playwright", "cleanlab")  # cleanlab: the reference of embeddings_bench (bench only)
    _build_studio_ui(session)  # the Studio benchmarks run in the browser
    session.run("python", "benchmarks/run.py", "--out", "bench-results", *session.posargs)


@nox.session(python=PYTHON)
def gate(session: nox.Session) -> None:
    """On request: the suite twice in random order, then two copies at once (tools/gate.py)."""
    remote = sorted({n for needs in PACKAGE_NEEDS.values() for n in needs if not n.startswith("packages/")})
    session.install(*CONSTRAINTS, *[f"-e{p}" for p in _all_packages()], "examples/weightslab-example-plugin",
                    *remote, *TEST_DEPS, "pytest-random-order")
    _build_studio_ui(session)
    session.run("python", "tools/gate.py", *session.posargs)


@nox.session(python=PYTHON)
def mutation(session: nox.Session) -> None:
    """On request: cosmic-ray mutation smoke test of the core's critical modules (tools/mutation_smoke.py)."""
    session.install(*CONSTRAINTS, "-e", "packages/core", *PACKAGE_NEEDS["core"], *TEST_DEPS, "cosmic-ray")
    session.run("python", "tools/mutation_smoke.py", *session.posargs)


def _all_packages() -> list[str]:
    return [f"packages/{name}" for name in PACKAGE_NEEDS]
