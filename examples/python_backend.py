"""The call the old Python backend made, unchanged: boto3's Lambda client invoking the
function with {"texts": [...]}, configured by the old backend's environment:

    USE_LAMBDA_SENTIMENT       true (default): call the deployed function on AWS (or wherever
                               AWS_ENDPOINT_URL points); false: call the local model served
                               by `ummatics-sentiment serve` at SENTIMENT_LOCAL_URL
    SENTIMENT_LAMBDA_FUNCTION  the function's name (default: ummatics-sentiment-analysis)
    SENTIMENT_LOCAL_URL        where `serve` listens (default: http://127.0.0.1:3001)

Offline development:

    ummatics-sentiment serve &                       # http://127.0.0.1:3001
    USE_LAMBDA_SENTIMENT=false python3 examples/python_backend.py "I love this!"
"""

import json
import os
import sys

import boto3
import botocore.config
import botocore.exceptions

TRUE, FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")
BATCH = 50  # the function takes at most 50 texts per call


def settings():
    """(use_lambda, function, local_url) from the environment, or SystemExit saying what is wrong."""
    raw = os.environ.get("USE_LAMBDA_SENTIMENT", "true").strip().lower()
    if raw not in TRUE + FALSE:
        sys.exit(
            f"USE_LAMBDA_SENTIMENT={raw!r} is neither true nor false; "
            "set it to true (call AWS Lambda) or false (call `ummatics-sentiment serve`)"
        )
    function = (
        os.environ.get("SENTIMENT_LAMBDA_FUNCTION")
        or os.environ.get("UMMATICS_FUNCTION")  # this example's earlier name for it
        or "ummatics-sentiment-analysis"
    )
    local = os.environ.get("SENTIMENT_LOCAL_URL", "http://127.0.0.1:3001")
    return raw in TRUE, function, local


def lambda_client(use_lambda, local):
    if use_lambda:
        return boto3.client("lambda", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))
    # `serve` speaks the Lambda Invoke API and ignores credentials and region.
    return boto3.client(
        "lambda",
        endpoint_url=local,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
        config=botocore.config.Config(retries={"max_attempts": 2}, connect_timeout=2),
    )


def analyze(texts):
    use_lambda, function, local = settings()
    client = lambda_client(use_lambda, local)
    results = []
    for start in range(0, len(texts), BATCH):
        try:
            response = client.invoke(
                FunctionName=function,
                Payload=json.dumps({"texts": texts[start : start + BATCH]}),
            )
        except botocore.exceptions.EndpointConnectionError as e:
            if use_lambda:
                raise
            sys.exit(
                f"USE_LAMBDA_SENTIMENT is false but no local model answers at {local} ({e}); "
                "start one with `ummatics-sentiment serve`, set SENTIMENT_LOCAL_URL, "
                "or set USE_LAMBDA_SENTIMENT=true"
            )
        if "FunctionError" in response:
            raise RuntimeError(response["Payload"].read().decode())
        payload = json.loads(response["Payload"].read())
        if payload["statusCode"] != 200:
            raise ValueError(payload["body"]["error"])
        results.extend(payload["body"]["results"])
    return results


if __name__ == "__main__":
    texts = sys.argv[1:] or ["I love this!", "This is terrible"]
    for text, result in zip(texts, analyze(texts)):
        print(f"{result['sentiment']:<9} {result['score']:.3f}  {text}")
