"""Makes ``twistd chatd`` available (no __init__.py here: twisted/plugins is a namespace)."""

from twisted.application.service import ServiceMaker

chatd = ServiceMaker("chatd", "chatd.tap", "A real-time chat server: REST, WebSocket and a browser page.", "chatd")
