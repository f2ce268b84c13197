# The server image the CloudFormation stack runs (`mcpadmin serve`).
# Built and pushed OUTSIDE this repository's CI (CI has no Docker engine), e.g.:
#   docker build -t 123456789012.dkr.ecr.us-east-1.amazonaws.com/finops-mcp:0.1.0 .
#   docker push 123456789012.dkr.ecr.us-east-1.amazonaws.com/finops-mcp:0.1.0
# then deploy with --param ImageUri=<that URI>.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY finops_mcp_admin ./finops_mcp_admin
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
# No root at run time; the task definition also makes the root filesystem read-only.
RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent mcp
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 10001
EXPOSE 8080
ENTRYPOINT ["mcpadmin"]
CMD ["serve", "--behind-proxy", "--production", "--host", "0.0.0.0", "--port", "8080"]
