"""The call the old Python backend made, unchanged: boto3's Lambda client invoking the
function with {"texts": [...]}. Point it at AWS, or at `ummatics-sentiment serve` for offline
development:

    ummatics-sentiment serve &                       # http://127.0.0.1:3001
    AWS_ENDPOINT_URL=http://127.0.0.1:3001 AWS_ACCESS_KEY_ID=x AWS_SECRET_ACCESS_KEY=x \\
        AWS_DEFAULT_REGION=us-east-1 python3 examples/python_backend.py "I love this!"
"""

import json
import os
import sys

import boto3

FUNCTION = os.environ.get("UMMATICS_FUNCTION", "ummatics-sentiment-analysis")
BATCH = 50  # the function takes at most 50 texts per call


def analyze(texts):
    client = boto3.client("lambda", endpoint_url=os.environ.get("AWS_ENDPOINT_URL"))
    results = []
    for start in range(0, len(texts), BATCH):
        response = client.invoke(
            FunctionName=FUNCTION,
            Payload=json.dumps({"texts": texts[start : start + BATCH]}),
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
