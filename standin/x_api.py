"""A stand-in X API for the tests, on 127.0.0.1: every call is authenticated as X does it, either
with an OAuth 1.0a signature (RFC 5849, HMAC-SHA1) or with an OAuth 2.0 bearer token.

The signature is verified by oauthlib's provider side (`ResourceEndpoint`), an implementation
that is not the function's own: the signature base string (method, URL with its query, and a
form body's parameters), the consumer and token secrets, the timestamp's window (600 s) and the
nonce, which is refused when seen before with the same consumer, token and timestamp.

Binds a port the OS picks, prints it on the first line of stdout, and serves until stdin closes
(the test process exited). The tests drive it through `/_standin/…`:
- `POST /_standin/consumer` `{"key", "secret"}`: an X app (consumer key and secret);
- `POST /_standin/oauth1` `{"token", "secret", "user"}`: a user's OAuth 1.0a access token;
- `POST /_standin/bearer` `{"token", "user"}`: a user's OAuth 2.0 access token;
- `POST /_standin/fail_next` `{"count"}`: the next `count` API requests are verified, then
  answered 503 (as X's API at capacity), so that a retry must be signed afresh;
- `GET /_standin/requests`: every API request received, with what was verified.
Any other path is the API: 200 with the user (`data`), how they were authenticated (`via`) and
an echo of the query and form body; 401 otherwise, with oauthlib's reasons.
"""
import json
import logging
import sys
import threading
from urllib.parse import parse_qsl

from oauthlib.oauth1 import RequestValidator, ResourceEndpoint
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

logging.getLogger("werkzeug").setLevel(logging.ERROR)

lock = threading.Lock()
consumers = {}
oauth1_tokens = {}
bearer_tokens = {}
seen_nonces = set()
requests = []
failures = [0]


class Validator(RequestValidator):
    """What X knows: its apps, the users' tokens and the nonces already used."""

    enforce_ssl = False  # loopback only
    allowed_signature_methods = ("HMAC-SHA1",)
    safe_characters = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
    client_key_length = (2, 100)
    access_token_length = (2, 100)
    nonce_length = (16, 64)
    dummy_client = "dummy-client"
    dummy_access_token = "dummy-token"

    def validate_client_key(self, client_key, request):
        return client_key in consumers

    def validate_access_token(self, client_key, token, request):
        return token in oauth1_tokens

    def validate_timestamp_and_nonce(self, client_key, timestamp, nonce, request,
                                     request_token=None, access_token=None):
        key = (client_key, timestamp, nonce, access_token)
        with lock:
            if key in seen_nonces:
                request.replayed = True
                return False
            seen_nonces.add(key)
        return True

    def validate_realms(self, client_key, token, request, uri=None, realms=None):
        return True

    def get_client_secret(self, client_key, request):
        return consumers.get(client_key, "dummy-secret")

    def get_access_token_secret(self, client_key, token, request):
        return oauth1_tokens.get(token, {}).get("secret", "dummy-secret")


endpoint = ResourceEndpoint(Validator())


def admin(request):
    body = json.loads(request.get_data(as_text=True) or "{}")
    with lock:
        if request.path == "/_standin/consumer":
            consumers[body["key"]] = body["secret"]
        elif request.path == "/_standin/oauth1":
            oauth1_tokens[body["token"]] = {"secret": body["secret"], "user": body["user"]}
        elif request.path == "/_standin/bearer":
            bearer_tokens[body["token"]] = body["user"]
        elif request.path == "/_standin/fail_next":
            failures[0] = body["count"]
        elif request.path == "/_standin/requests":
            return Response(json.dumps(requests), content_type="application/json")
        else:
            return Response("no such admin path", status=404)
    return Response("{}", content_type="application/json")


def api(request):
    raw_uri = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI") or request.full_path
    uri = "http://" + request.host + raw_uri
    body = request.get_data(as_text=True)
    headers = dict(request.headers)
    authorization = request.headers.get("Authorization", "")
    record = {
        "method": request.method,
        "uri": raw_uri,
        "scheme": authorization.split(" ", 1)[0],
        "content_type": request.headers.get("Content-Type", ""),
        "body": body,
        "headers": sorted(k.lower() for k in headers),
    }
    user, via, reasons = None, None, {}
    if authorization.startswith("OAuth "):
        valid, verified = endpoint.validate_protected_resource_request(
            uri, http_method=request.method, body=body, headers=headers)
        if verified is not None:
            reasons = dict(verified.validator_log)
            reasons["replayed"] = getattr(verified, "replayed", False)
            record["nonce"] = verified.nonce
            record["signed_params"] = sorted(k for k, _ in verified.params)
        if valid:
            user, via = oauth1_tokens[verified.resource_owner_key]["user"], "oauth1"
    elif authorization.startswith("Bearer "):
        user = bearer_tokens.get(authorization[len("Bearer "):])
        via = "oauth2" if user is not None else None
    record["verified"] = via
    record["reasons"] = reasons
    with lock:
        requests.append(record)
        failing = failures[0] > 0
        failures[0] = max(failures[0] - 1, 0)
    if failing:
        return Response('{"title": "Service Unavailable"}', status=503,
                        content_type="application/problem+json")
    if user is None:
        answer = {"title": "Unauthorized", "type": "about:blank", "status": 401,
                  "detail": "Unauthorized", "reasons": reasons}
        return Response(json.dumps(answer), status=401, content_type="application/problem+json")
    form = dict(parse_qsl(body)) if "form-urlencoded" in record["content_type"] else None
    answer = {"data": user, "via": via, "query": dict(request.args), "form": form}
    return Response(json.dumps(answer), content_type="application/json")


@Request.application
def app(request):
    if request.path.startswith("/_standin/"):
        return admin(request)
    return api(request)


server = make_server("127.0.0.1", 0, app, threaded=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
print(server.server_address[1], flush=True)
sys.stdin.read()
server.shutdown()
