"""Secrets Manager reads: the Redis AUTH token of a deployed stack, fetched when a command opens
the store, so the token never passes through argv, an environment listing or shell history."""

from __future__ import annotations

import re

from ..errors import InvalidInput
from .session import AwsOptions, aws_errors, client

_ARN = re.compile(r"^arn:aws[a-z-]*:secretsmanager:(?P<region>[a-z0-9-]+):\d{12}:secret:.+$")


def secret_string(arn: str) -> str:
    """The SecretString of the secret `arn`, read in the ARN's own region (credentials, profile
    and endpoint from the standard AWS_* environment). Never logged, never in an error."""
    match = _ARN.match(arn)
    if not match:
        raise InvalidInput(f"not a Secrets Manager secret ARN: {arn!r}")
    sm = client("secretsmanager", AwsOptions(region=match["region"]))
    with aws_errors(f"secret {arn}"):
        value = sm.get_secret_value(SecretId=arn).get("SecretString")
    if not value:
        raise InvalidInput(f"secret {arn} has no SecretString (a binary secret cannot be a Redis password)")
    return str(value)
