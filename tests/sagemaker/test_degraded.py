"""An answer that is not numbers is a sentence, on moto's server, as the user would meet it."""

from __future__ import annotations

import json
import os
import urllib.request
from pathlib import Path

import pytest

from core.sagemaker.aws import make_clients, make_session
from tests.aws import BUCKET, REGION, ROLE
from tui.cli import main

BASE = ["--backend", "sagemaker", "--role-arn", ROLE, "--bucket", BUCKET]


def _endpoint(name: str) -> None:
    sm = make_clients(make_session(REGION)).sagemaker
    sm.create_model(ModelName="m", PrimaryContainer={"Image": "sklearn"}, ExecutionRoleArn=ROLE)
    variant = {
        "VariantName": "AllTraffic",
        "ModelName": "m",
        "ServerlessConfig": {"MemorySizeInMB": 2048, "MaxConcurrency": 5},
    }
    sm.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[variant])
    sm.create_endpoint(EndpointName=name, EndpointConfigName="c")


def _answer(body: str) -> None:
    """What moto's InvokeEndpoint answers next (its stand-in for the container)."""
    result = {"results": [{"Body": body, "ContentType": "text/csv", "InvokedProductionVariant": "AllTraffic"}]}
    request = urllib.request.Request(
        f"{os.environ['AWS_ENDPOINT_URL']}/moto-api/static/sagemaker/endpoint-results",
        data=json.dumps(result).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    urllib.request.urlopen(request, timeout=30)


@pytest.mark.parametrize(
    ("answer", "quoted", "as_json"),
    [
        ("<html><body><h1>502 Bad Gateway</h1></body></html>", "'502 Bad Gateway'", False),
        ("<html><body><h1>502 Bad Gateway</h1></body></html>", "'502 Bad Gateway'", True),
        ("predicted: high\n", "'predicted: high'", True),
        ("", "''", False),
    ],
    ids=["html", "html-json", "words-json", "empty"],
)
def test_invoke_says_an_answer_that_is_not_numbers_in_one_sentence(
    aws: str, capsys, tmp_path: Path, as_json: bool, answer: str, quoted: str
) -> None:
    _endpoint("ep")
    _answer(answer)
    rows = tmp_path / "rows.csv"
    rows.write_text("8.3252,41.0,6.98,1.02,322.0,2.55,37.88,-122.23\n")
    code = main([*BASE, "--home", str(tmp_path), "invoke", "ep", "--file", str(rows), *(["--json"] if as_json else [])])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert err == (
        f"housing-tui: error: endpoint ep answered something that is not one number per line: {quoted}; "
        "check which model it serves with `housing-tui endpoints`\n"
    )
