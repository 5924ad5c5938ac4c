import json


def handler(event, context):
    """Answers with a greeting and echoes the request's path, if any."""
    return {
        "statusCode": 200,
        "headers": {"content-type": "application/json"},
        "body": json.dumps({"hello": "from plinth", "path": event.get("rawPath", "/")}),
    }
