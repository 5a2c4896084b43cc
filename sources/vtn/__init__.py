"""A test OpenADR 3 VTN on 127.0.0.1 (programs, events, subscriptions, OAuth2 tokens, pushed
notifications, fault knobs) for the VEN client's tests and benchmarks.

>>> from sources.vtn import VtnServer
>>> vtn = VtnServer(clients={"ven": "s3cret"}).start()
>>> prog = vtn.add_program({"programName": "dr"})
>>> ev = vtn.publish({"programID": prog["id"], "intervals": [...]})
>>> vtn.stop()
"""

from sources.vtn.server import VtnServer
from sources.vtn.state import ApiProblem, VtnFaults

__all__ = ["ApiProblem", "VtnFaults", "VtnServer"]
