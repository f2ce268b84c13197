"""The image's supply chain, checked on the Dockerfile and the lock file (CI has no Docker engine):
a digest-pinned base, dependencies installed only from hashes, the project wheel without
dependencies, and nothing of the build left in the runtime stage."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
LOCKS = ("requirements/image.lock.txt", "requirements/build.lock.txt")


def _instructions() -> list[str]:
    """Dockerfile instructions with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n\s*", " ", "\n".join(line for line in DOCKERFILE.splitlines()
                                            if not line.lstrip().startswith("#")))
    return [line.strip() for line in text.splitlines() if line.strip()]


def _args() -> dict[str, str]:
    return dict(re.findall(r"^ARG (\w+)=(\S+)$", "\n".join(_instructions()), re.M))


def test_every_base_image_is_pinned_by_digest():
    froms = [line.split()[1] for line in _instructions() if line.startswith("FROM ")]
    assert len(froms) == 2
    for image in froms:
        resolved = re.sub(r"\$\{(\w+)\}", lambda m: _args()[m.group(1)], image)
        assert re.fullmatch(r"[a-z0-9./-]+:[\w.-]+@sha256:[0-9a-f]{64}", resolved), resolved


def test_dependencies_install_only_from_hashes_and_the_wheel_without_dependencies():
    runtime = "\n".join(_instructions()[[i for i, line in enumerate(_instructions())
                                          if line.startswith("FROM ")][1]:])
    assert "pip install --no-cache-dir --no-compile --require-hashes -r /tmp/image.lock.txt" in runtime
    assert "--no-deps /wheels/*.whl" in runtime
    # The lock and the wheel are bind mounts of that one RUN: no COPY leaves them in a layer.
    assert "COPY" not in runtime and "--mount=type=bind,from=build,source=/wheels" in runtime
    build = "\n".join(_instructions()[:[i for i, line in enumerate(_instructions())
                                        if line.startswith("FROM ")][1]])
    assert "--require-hashes -r /tmp/build.lock.txt" in build and "--no-build-isolation" in build


def test_lock_files_exist_and_every_requirement_is_pinned_with_hashes():
    for name in LOCKS:
        text = (ROOT / name).read_text()
        entries = re.split(r"\n(?=\S)", "\n".join(line for line in text.splitlines()
                                                   if line.strip() and not line.lstrip().startswith("#")))
        assert entries, name
        for entry in entries:
            requirement = entry.split("\\")[0].strip()
            assert re.fullmatch(r"[A-Za-z0-9._-]+==[A-Za-z0-9.+!-]+", requirement), (name, requirement)
            assert re.search(r"--hash=sha256:[0-9a-f]{64}", entry), (name, requirement)


def test_image_lock_covers_every_runtime_dependency():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    # The image runs the server and reads its Redis password from Secrets Manager: core + [all].
    declared = [*project["dependencies"], *project["optional-dependencies"]["server"],
                *project["optional-dependencies"]["aws"]]
    locked = {line.split("==")[0].lower() for line in (ROOT / LOCKS[0]).read_text().splitlines()
              if "==" in line and not line.startswith(" ")}
    for requirement in declared:
        name = re.split(r"[<>=!~\[ ;]", requirement, maxsplit=1)[0].lower().replace("_", "-")
        assert name in locked, f"{name} is not in {LOCKS[0]}: re-run pip-compile (docs/image.md)"
