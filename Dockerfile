# The server image the CloudFormation stack runs (`mcpadmin serve`). Build, push and pin by
# digest as in docs/image.md; CI has no Docker engine, so this file is checked by
# tests/aws/test_image.py (digest-pinned base, hash-locked dependencies), not built there.
#
# Base image pinned by digest: a tag such as 3.11-slim moves to new content every rebuild
# upstream. The default below is a python:3.11-slim digest as pinned in public Dockerfiles; it
# was NOT pulled or verified from this repository (no Docker engine here). Before a release,
# refresh and verify it (docs/image.md):
#   docker buildx imagetools inspect python:3.11-slim --format '{{json .Manifest.Digest}}'
# and pass it with --build-arg PYTHON_IMAGE=python:3.11-slim@sha256:<digest>, or edit it here.
ARG PYTHON_IMAGE=python:3.11-slim@sha256:9c900dea9e8fb7e16277c179b555cc72d29a352dbc33cff48ad5a0412fd5bfc7

# Stage 1: the project's own wheel only (dependencies come from the lock, not from here).
FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY requirements/build.lock.txt /tmp/build.lock.txt
RUN pip install --no-cache-dir --require-hashes -r /tmp/build.lock.txt
COPY pyproject.toml README.md ./
COPY finops_mcp_admin ./finops_mcp_admin
RUN pip wheel --no-cache-dir --no-deps --no-build-isolation --wheel-dir /wheels .

# Stage 2: the runtime. The lock file and the wheel are bind-mounted for the one RUN that
# installs them (BuildKit, the default builder since Docker 23), so neither they nor any build
# tool remain in a layer.
FROM ${PYTHON_IMAGE}
# No root at run time; the task definition also makes the root filesystem read-only.
RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent mcp
RUN --mount=type=bind,source=requirements/image.lock.txt,target=/tmp/image.lock.txt \
    --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-compile --require-hashes -r /tmp/image.lock.txt \
    && pip install --no-cache-dir --no-compile --no-deps /wheels/*.whl \
    && pip check
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 10001
EXPOSE 8080
ENTRYPOINT ["mcpadmin"]
CMD ["serve", "--behind-proxy", "--production", "--host", "0.0.0.0", "--port", "8080"]
