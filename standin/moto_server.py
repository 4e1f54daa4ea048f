"""A real AWS protocol peer for the tests (Secrets Manager, DynamoDB): moto's server on 127.0.0.1.

Binds a port the OS picks, prints it on the first line of stdout, and serves until stdin closes
(the test process exited), so that no server outlives the tests.

Requests are handled one at a time. moto evaluates a DynamoDB condition and applies the write
as two steps without a lock, so two concurrent conditional writes (two environments taking one
lease) could both succeed, which DynamoDB itself never allows; on a loaded machine the fleet
tests then saw two grants. Serialising requests gives moto DynamoDB's per-item atomicity (each
request takes a few milliseconds on loopback); connections are still accepted concurrently.
"""
import io
import logging
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import WSGIRequestHandler, make_server

# One line per request on stderr would drown the test output.
logging.getLogger("werkzeug").setLevel(logging.ERROR)

app = DomainDispatcherApplication(create_backend_app)
one_at_a_time = threading.Lock()


def serialised(environ, start_response):
    """moto's WSGI app, one request at a time. The body is read before the lock is taken (a
    client stalling mid-body holds nobody up), the answer is read whole under it."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    environ["wsgi.input"] = io.BytesIO(environ["wsgi.input"].read(length) if length else b"")
    with one_at_a_time:
        result = app(environ, start_response)
        try:
            return [b"".join(result)]
        finally:
            if hasattr(result, "close"):
                result.close()


class Handler(WSGIRequestHandler):
    # A connection that sends nothing for this long is closed, freeing its thread.
    timeout = 30


server = make_server("127.0.0.1", 0, serialised, threaded=True, request_handler=Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
print(server.server_address[1], flush=True)
sys.stdin.read()
server.shutdown()
