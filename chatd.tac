"""``twistd -ny chatd.tac``: the same service as ``twistd chatd``, configured from CHATD_* variables."""

from twisted.application import service

from chatd.tap import Options, makeService

options = Options()
options.parseOptions([])  # every setting comes from the environment (see README.md)
application = service.Application("chatd")
makeService(options).setServiceParent(application)
