"""A real AWS protocol peer for the tests (Secrets Manager, DynamoDB): moto's server on 127.0.0.1.

Binds a port the OS picks, prints it on the first line of stdout, and serves until stdin closes
(the test process exited), so that no server outlives the tests.

Requests are handled one at a time. moto evaluates a DynamoDB condition and applies the write
as two steps without a lock, so two concurrent conditional writes (two environments taking one
lease) could both succeed, which DynamoDB itself never allows; on a loaded machine the fleet
tests then saw two grants. Serialising requests gives moto DynamoDB's per-item atomicity (each
request takes a few milliseconds on loopback); connections are still accepted concurrently.
"""
import logging
import sys
import threading

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from werkzeug.serving import make_server

# One line per request on stderr would drown the test output.
logging.getLogger("werkzeug").setLevel(logging.ERROR)

app = DomainDispatcherApplication(create_backend_app)
one_at_a_time = threading.Lock()


def serialised(environ, start_response):
    """moto's WSGI app, one request at a time: the answer is read whole under the lock."""
    with one_at_a_time:
        return [b"".join(app(environ, start_response))]


server = make_server("127.0.0.1", 0, serialised, threaded=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
print(server.server_address[1], flush=True)
sys.stdin.read()
server.shutdown()
