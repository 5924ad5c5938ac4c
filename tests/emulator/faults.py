"""Fault injection: the emulator answers some requests the way a busy, flaky AWS does.

    moto_server.py --faults throttle=0.08,error=0.04,lost=0.03,latency=0-30ms --seed 7

- throttle=P: the request is refused, not executed, with the service's own throttling answer
  in its own protocol (DynamoDB's JSON `__type` ThrottlingException, EC2's RequestLimitExceeded
  with HTTP 503, the query protocols' `Throttling`, S3's SlowDown 503, Lambda's 429
  TooManyRequestsException, CloudFront's and ACM's Throttling/ThrottlingException, SSM's
  ThrottlingException, Route 53's Throttling).
- error=P: refused with the service's own 5xx (InternalFailure, InternalError,
  InternalServerError, ServiceFailure, ServiceException; CloudFront's 503
  ServiceUnavailable).
- lost=P: the request IS executed, then the connection is closed without a reply: half the
  time with an orderly close (the client reads EOF), half with a reset (RST).
- hang=P: the request is neither executed nor answered; the connection stays open until the
  client gives up (at most HANG_SECONDS).
- latency=A-Bms: every request waits a uniformly chosen time in that range first.

Which request gets which fault is decided by a hash of the seed, the request (service,
method, path, query, body) and how many times that same request was seen before, not by the
order requests arrive in: the same seed picks the same faults for the same requests even
when they arrive in another order from many threads, so a failure can be replayed. A retry
of a request is another occurrence and is decided afresh.

The emulator's own API (/moto-api) is never faulted, and neither is a second, clean port the
tests check the outcome through.
"""

import hashlib
import io
import random
import re
import socket
import struct
import threading
import time
import uuid

from werkzeug.serving import WSGIRequestHandler

HANG_SECONDS = 600.0

_SERVICE = re.compile(r"Credential=[^/]+/[^/]+/([^/]+)/([^/]+)/aws4_request")


class Faults:
    def __init__(self, spec: str, seed: int):
        self.rates = {"throttle": 0.0, "error": 0.0, "lost": 0.0, "hang": 0.0}
        self.latency = (0.0, 0.0)
        for part in filter(None, (p.strip() for p in spec.split(","))):
            key, _, value = part.partition("=")
            if key == "latency":
                low, _, high = value.removesuffix("ms").partition("-")
                self.latency = (float(low) / 1000.0, float(high or low) / 1000.0)
            elif key in self.rates:
                self.rates[key] = float(value)
            else:
                raise SystemExit(f"--faults: unknown fault `{key}` (throttle, error, lost, hang, latency)")
        if sum(self.rates.values()) > 1.0:
            raise SystemExit("--faults: the rates add up to more than 1")
        self.seed = seed
        self.seen: dict[bytes, int] = {}
        self.lock = threading.Lock()
        self.counts = {k: 0 for k in self.rates}

    def draw(self, key: bytes) -> random.Random:
        with self.lock:
            n = self.seen.get(key, 0)
            self.seen[key] = n + 1
        digest = hashlib.sha256(struct.pack(">QQ", self.seed, n) + key).digest()
        return random.Random(digest)

    def choose(self, rng: random.Random) -> str | None:
        roll = rng.random()
        for fault, rate in self.rates.items():
            if roll < rate:
                with self.lock:
                    self.counts[fault] += 1
                return fault
            roll -= rate
        return None


def service_of(environ) -> tuple[str, str] | None:
    """(service, region) from the request's SigV4 credential scope."""
    match = _SERVICE.search(environ.get("HTTP_AUTHORIZATION", ""))
    return (match.group(2), match.group(1)) if match else None


def _request_id() -> str:
    return str(uuid.uuid4())


def _query_error(namespace: str, code: str, message: str, sender: bool) -> bytes:
    kind = "Sender" if sender else "Receiver"
    return (f'<ErrorResponse xmlns="{namespace}"><Error><Type>{kind}</Type><Code>{code}</Code>'
            f"<Message>{message}</Message></Error><RequestId>{_request_id()}</RequestId>"
            "</ErrorResponse>").encode()


def _ec2_error(code: str, message: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
            f"<Code>{code}</Code><Message>{message}</Message></Error></Errors>"
            f"<RequestID>{_request_id()}</RequestID></Response>").encode()


def _s3_error(code: str, message: str) -> bytes:
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{code}</Code><Message>{message}</Message>"
            f"<RequestId>{uuid.uuid4().hex[:16].upper()}</RequestId>"
            "<HostId>ZmF1bHQtaW5qZWN0ZWQtYnktdGhlLXBsaW50aC10ZXN0LWVtdWxhdG9y</HostId></Error>").encode()


def _json_error(type_name: str, message: str) -> bytes:
    return ('{"__type":"%s","message":"%s"}' % (type_name, message)).encode()


QUERY_NAMESPACES = {
    "elasticache": "http://elasticache.amazonaws.com/doc/2015-02-02/",
    "iam": "https://iam.amazonaws.com/doc/2010-05-08/",
    "sts": "https://sts.amazonaws.com/doc/2011-06-15/",
    "route53": "https://route53.amazonaws.com/doc/2013-04-01/",
}
CLOUDFRONT_NAMESPACE = "http://cloudfront.amazonaws.com/doc/2020-05-31/"


# DynamoDB operations on items (the data plane); the rest is the control plane.
DYNAMODB_DATA_PLANE = {"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan",
                       "BatchGetItem", "BatchWriteItem", "TransactGetItems", "TransactWriteItems"}


def answer(service: str, fault: str, target: str = "") -> tuple[str, list[tuple[str, str]], bytes]:
    """The status, headers and body `service` answers a throttled or failed request with
    (`target`: the JSON protocols' X-Amz-Target, naming the operation)."""
    throttled = fault == "throttle"
    rid = ("x-amzn-RequestId", _request_id())
    if service == "dynamodb":
        if not throttled:
            body = _json_error("com.amazonaws.dynamodb.v20120810#InternalServerError",
                               "Internal server error")
        elif target.split(".")[-1] in DYNAMODB_DATA_PLANE:
            body = _json_error("com.amazonaws.dynamodb.v20120810#ThrottlingException",
                               "Throughput exceeds the current capacity of your table or index. "
                               "DynamoDB is automatically scaling your table or index so please "
                               "try again shortly.")
        else:
            # The control plane (CreateTable, DescribeTable, …) throttles in another namespace.
            body = _json_error("com.amazon.coral.availability#ThrottlingException", "Rate exceeded")
        return ("400 Bad Request" if throttled else "500 Internal Server Error",
                [("Content-Type", "application/x-amz-json-1.0"), rid], body)
    if service == "acm":
        name = "ThrottlingException" if throttled else "InternalFailure"
        message = "Rate exceeded" if throttled else "An internal error occurred."
        return ("400 Bad Request" if throttled else "500 Internal Server Error",
                [("Content-Type", "application/x-amz-json-1.1"), rid], _json_error(name, message))
    if service == "kms":
        name = "ThrottlingException" if throttled else "KMSInternalException"
        message = "Rate exceeded" if throttled else "An internal error occurred."
        return ("400 Bad Request" if throttled else "500 Internal Server Error",
                [("Content-Type", "application/x-amz-json-1.1"), rid], _json_error(name, message))
    if service == "logs":
        name = "ThrottlingException" if throttled else "ServiceUnavailableException"
        message = "Rate exceeded" if throttled else "The service cannot complete the request."
        return ("400 Bad Request" if throttled else "500 Internal Server Error",
                [("Content-Type", "application/x-amz-json-1.1"), rid], _json_error(name, message))
    if service == "application-autoscaling":
        name = "ThrottlingException" if throttled else "InternalServiceException"
        message = "Rate exceeded" if throttled else "An internal error occurred."
        return ("400 Bad Request" if throttled else "500 Internal Server Error",
                [("Content-Type", "application/x-amz-json-1.1"), rid], _json_error(name, message))
    if service == "ssm":
        name = "ThrottlingException" if throttled else "InternalServerError"
        message = "Rate exceeded" if throttled else "An internal error occurred."
        return ("400 Bad Request" if throttled else "500 Internal Server Error",
                [("Content-Type", "application/x-amz-json-1.1"), rid], _json_error(name, message))
    if service == "tagging":
        # The Resource Groups Tagging API says ThrottledException, not ThrottlingException.
        name = "ThrottledException" if throttled else "InternalServiceException"
        message = "Rate exceeded" if throttled else "An internal error occurred."
        return ("400 Bad Request" if throttled else "500 Internal Server Error",
                [("Content-Type", "application/x-amz-json-1.1"), rid], _json_error(name, message))
    if service == "ec2":
        if throttled:
            return ("503 Service Unavailable", [("Content-Type", "text/xml;charset=UTF-8")],
                    _ec2_error("RequestLimitExceeded", "Request limit exceeded."))
        return ("500 Internal Server Error", [("Content-Type", "text/xml;charset=UTF-8")],
                _ec2_error("InternalError", "An internal error has occurred"))
    if service == "s3":
        if throttled:
            return ("503 Slow Down", [("Content-Type", "application/xml")],
                    _s3_error("SlowDown", "Please reduce your request rate."))
        return ("500 Internal Server Error", [("Content-Type", "application/xml")],
                _s3_error("InternalError", "We encountered an internal error. Please try again."))
    if service == "lambda":
        if throttled:
            body = b'{"Reason":"CallerRateLimitExceeded","Type":"User","message":"Rate exceeded"}'
            return ("429 Too Many Requests",
                    [("Content-Type", "application/json"), rid,
                     ("x-amzn-ErrorType", "TooManyRequestsException"), ("Retry-After", "1")], body)
        body = b'{"Type":"Service","message":"An internal error occurred."}'
        return ("500 Internal Server Error",
                [("Content-Type", "application/json"), rid,
                 ("x-amzn-ErrorType", "ServiceException")], body)
    if service == "cloudfront":
        # CloudFront's internal failures come as 503 ServiceUnavailable.
        code = "Throttling" if throttled else "ServiceUnavailable"
        message = "Rate exceeded" if throttled else "CloudFront encountered an internal error. Please try again."
        body = b'<?xml version="1.0"?>\n' + _query_error(CLOUDFRONT_NAMESPACE, code, message, throttled)
        return ("400 Bad Request" if throttled else "503 Service Unavailable",
                [("Content-Type", "text/xml"), rid], body)
    namespace = QUERY_NAMESPACES.get(service, "https://amazonaws.com/doc/")
    code = "Throttling" if throttled else ("ServiceFailure" if service == "iam" else "InternalFailure")
    message = "Rate exceeded" if throttled else "An internal error occurred."
    return ("400 Bad Request" if throttled else "500 Internal Server Error",
            [("Content-Type", "text/xml"), rid], _query_error(namespace, code, message, throttled))


class LostAnswer(ConnectionError):
    """Raised once a request ran (or hung) and its answer is to be lost. werkzeug treats it as
    a connection the client dropped and writes nothing; `FaultyRequestHandler` then closes the
    connection, with a reset when `reset` is set."""

    def __init__(self, message: str, reset: bool):
        super().__init__(message)
        self.reset = reset


class FaultyRequestHandler(WSGIRequestHandler):
    """werkzeug's handler, closing the connection of a lost answer without a reply."""

    def connection_dropped(self, error, environ=None):
        if isinstance(error, LostAnswer):
            self.close_connection = True
            if error.reset:
                try:
                    # A zero linger time makes the close abortive: the client gets RST.
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                               struct.pack("ii", 1, 0))
                except OSError:
                    pass


class FaultInjector:
    """WSGI middleware in front of moto."""

    def __init__(self, app, faults: Faults):
        self.app = app
        self.faults = faults

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO", "").startswith("/moto-api"):
            return self.app(environ, start_response)
        target = service_of(environ)
        if target is None:
            return self.app(environ, start_response)
        body = _read_body(environ)
        key = "\n".join([target[0], environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", ""),
                         environ.get("QUERY_STRING", "")]).encode() + b"\n" + body
        rng = self.faults.draw(key)
        low, high = self.faults.latency
        if high > 0:
            time.sleep(rng.uniform(low, high))
        fault = self.faults.choose(rng)
        if fault in ("throttle", "error"):
            status, headers, payload = answer(target[0], fault, environ.get("HTTP_X_AMZ_TARGET", ""))
            start_response(status, headers + [("Content-Length", str(len(payload)))])
            return [payload]
        if fault == "hang":
            time.sleep(HANG_SECONDS)
            raise LostAnswer("hung request", reset=False)
        if fault == "lost":
            # Run the request to the end (AWS did the work), then lose the answer.
            chunks = self.app(environ, lambda *_args, **_kw: (lambda _data: None))
            try:
                for _ in chunks:
                    pass
            finally:
                if hasattr(chunks, "close"):
                    chunks.close()
            raise LostAnswer("answer lost on purpose", reset=rng.random() < 0.5)
        return self.app(environ, start_response)


def _read_body(environ) -> bytes:
    """Reads the request body and puts it back for moto."""
    stream = environ["wsgi.input"]
    if environ.get("wsgi.input_terminated"):
        body = stream.read()  # chunked: read to its end
    else:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        body = stream.read(length) if length > 0 else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body
