"""``twistd -ny chatd.tac``: the same service as ``twistd chatd``, configured from CHATD_* variables."""

import sys

from twisted.application import service
from twisted.logger import ILogObserver

from chatd import jsonlog
from chatd.tap import Options, makeService

options = Options()
options.parseOptions([])  # every setting comes from the environment (see README.md)
application = service.Application("chatd")
if options.config.log_format == "json":
    # twistd uses this observer unless given --logger; it writes to standard output (run with -n).
    application.setComponent(ILogObserver, jsonlog.json_observer(sys.stdout))
makeService(options).setServiceParent(application)
