"""A real Secrets Manager protocol peer for the tests: moto's server on 127.0.0.1.

Binds a port the OS picks, prints it on the first line of stdout, and serves until stdin closes
(the test process exited), so that no server outlives the tests.
"""
import logging
import sys

from moto.server import ThreadedMotoServer

# One line per request on stderr would drown the test output.
logging.getLogger("werkzeug").setLevel(logging.ERROR)

server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
host, port = server.get_host_and_port()
print(port, flush=True)
sys.stdin.read()
server.stop()
